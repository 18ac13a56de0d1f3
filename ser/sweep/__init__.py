"""Sweeps: `python -m ser.sweep SWEEP.yaml [key=value ...]` on Ray Tune (ASHA), W&B, resume, leaderboard."""
