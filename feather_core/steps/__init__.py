"""The processing steps, one small module each; ``feather_core.pipeline`` orders them."""
