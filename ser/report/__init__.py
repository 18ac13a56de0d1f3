"""Metrics, plots and tables of runs and sweeps (no training code: inference and the web UI use it too)."""
