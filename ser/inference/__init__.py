"""Scoring audio with a trained checkpoint: loading, the scorer, files, streams. Never imports training."""
