#!/usr/bin/env bash
# Creates benchmarks/.work/venv-textattack: TextAttack 0.3.11 (the reference for bench_textattack.py) in its own
# venv, since it pins transformers 4.x and pulls flair, while lmcritic runs on transformers 5.
# torch is pinned exactly: a looser spec pulls a multi-GB CUDA build; 2.13.0 CPU lies on disk here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV_TEXTATTACK:-benchmarks/.work/venv-textattack}"
if [ -f "$VENV/.installed" ] && "$VENV/bin/python" -c 'import wordfreq, symspellpy' 2>/dev/null; then
  echo "$VENV ready"; exit 0
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q textattack==0.3.11 -c benchmarks/textattack-constraints.txt
# lmcritic's input normaliser (pure Python + these two), so TextAttack can attack a model served behind it
"$VENV/bin/pip" install -q wordfreq symspellpy -c benchmarks/textattack-constraints.txt
touch "$VENV/.installed"
HF_HUB_OFFLINE=1 "$VENV/bin/python" -c 'import transformers; print("transformers", transformers.__version__)'
echo "$VENV ready (textattack 0.3.11)"
