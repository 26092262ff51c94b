#!/usr/bin/env bash
# Creates benchmarks/.work/venv-evidently: Evidently (the reference for benchmarks/monitor/bench_drift.py) in its
# own venv, so its pandas/plotly/nltk pins never touch lmcritic's. It needs no torch.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV_EVIDENTLY:-benchmarks/.work/venv-evidently}"
if [ -f "$VENV/.installed" ]; then echo "$VENV ready"; exit 0; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "evidently==0.7.23" "pandas<3"  # evidently 0.7 imports a helper pandas 3 removed
touch "$VENV/.installed"
"$VENV/bin/python" -c 'import evidently; print("evidently", evidently.__version__)'
echo "$VENV ready"
