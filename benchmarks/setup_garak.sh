#!/usr/bin/env bash
# Creates benchmarks/.work/venv-garak: garak (the reference for bench_garak.py) in its own venv, since it pins
# transformers <5.20 and pulls langchain, litellm and many API clients that lmcritic does not need.
# torch is pinned exactly: a looser spec pulls a multi-GB CUDA build; 2.13.0 CPU lies on disk here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV_GARAK:-benchmarks/.work/venv-garak}"
GARAK_VERSION="${GARAK_VERSION:-0.17.1}"
if [ -f "$VENV/.installed" ]; then echo "$VENV ready"; exit 0; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q "garak==$GARAK_VERSION" "torch==2.13.0"
touch "$VENV/.installed"
"$VENV/bin/python" -m garak --version
echo "$VENV ready (garak $GARAK_VERSION)"
