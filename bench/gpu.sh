#!/usr/bin/env bash
# One command for a machine with a GPU: < 8 minutes, writes bench/results/gpu-<time>/gpu.json and gpu.md.
#   bash bench/gpu.sh /work/shared/data/ravdess-dev-16k   # every section; cnn_depth needs the corpus path
#   bash bench/gpu.sh                                      # without the corpus: synthetic data, no cnn_depth
#   bash bench/gpu.sh --dry-run                            # everything tiny on CPU (what the tests run)
# Options after the path go to bench/gpu.py (--budget-min, --sections, --levels, --out); see its --help.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --dry-run "* ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
fi
exec "${PYTHON:-python}" bench/gpu.py "$@"
