"""Mutants of the mask sampler (backend.mask_sampler), one per mask law."""
