"""ser: speech emotion recognition sweeps on PyTorch Lightning, Ray Tune and W&B."""

__version__ = "0.1.0"
