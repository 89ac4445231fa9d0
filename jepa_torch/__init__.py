"""jepa_torch: the PyTorch implementation of the JEPA spec, and its trainer.

ViT encoders (tiny to giant) and the I-JEPA predictor with the official state-dict
layout, the JEPA training step (CPU fp32, CUDA bf16), official checkpoint I/O,
and the torch backend of the law suite (``jepa_torch.backend:backend``).
"""
