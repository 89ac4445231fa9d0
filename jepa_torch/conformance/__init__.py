"""The torch backend of the law suite (``--jepa-backend=jepa_torch.conformance.backend:backend``) and
the adapters that show the torch modules through the spec's Protocols."""
