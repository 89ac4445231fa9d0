"""Files in and out: atomic writes, our checkpoints (format, digests) and the official I-JEPA layout,
export, timm and Hugging Face, figures."""
