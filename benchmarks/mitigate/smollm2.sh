#!/usr/bin/env bash
# SmolLM2-135M-Instruct end to end from the CLI (README "Mitigation"): calibration, the injection and harm guards,
# and a LoRA adversarial fine-tune with a fresh re-attack. Each step's output and wall time go to
# benchmarks/results/mitigate_smollm2_<stamp>/. Set STEPS=... to run a subset (calibrate injection harm lora).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LMCRITIC_HOME="${LMCRITIC_HOME:-$PWD/.lmcritic}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DATA="${LMCRITIC_SHARED_DATA:-$PWD/../shared/data}"
[ -f "$DATA/sst2_train.tsv" ] || DATA=/work/shared/data
OUT="benchmarks/results/mitigate_smollm2_$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
LM=".venv/bin/lmcritic"
STEPS="${STEPS:-calibrate injection harm lora}"
step() {  # name, command...: run it, keep its output, print its wall time
  local name=$1; shift
  local t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2> "$OUT/$name.err" || { echo "$name FAILED (see $OUT/$name.err)"; return 1; }
  echo "$name: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
}
run_id() { grep -o 'run [0-9]\{8\}-[0-9]\{6\}-[0-9a-f]\{4\}' "$OUT/$1.log" | tail -1 | cut -d' ' -f2; }
uptime >> "$OUT/times.txt"
if [[ " $STEPS " == *" calibrate "* || " $STEPS " == *" lora "* ]]; then
  step sentiment_run $LM run examples/mitigate_sentiment.yaml --no-progress
  S=$(run_id sentiment_run)
  step sentiment_diagnose $LM diagnose "$S" --train "$DATA/sst2_train.tsv" --probe performance.sst2 --max-queries 1500
fi
if [[ " $STEPS " == *" calibrate "* ]]; then
  step calibrate $LM mitigate "$S" --method calibrate --train "$DATA/sst2_train.tsv" -o "$OUT/calibrate" --no-progress
fi
if [[ " $STEPS " == *" injection "* || " $STEPS " == *" harm "* ]]; then
  step safety_run $LM run examples/mitigate_safety.yaml --no-progress
  G=$(run_id safety_run)
fi
if [[ " $STEPS " == *" injection "* ]]; then
  step injection $LM mitigate "$G" --method injection_guard -o "$OUT/injection" --no-progress
fi
if [[ " $STEPS " == *" harm "* ]]; then
  step harm $LM mitigate "$G" --method harm_guard -o "$OUT/harm" --no-progress
fi
if [[ " $STEPS " == *" lora "* ]]; then
  step lora $LM mitigate "$S" --method adversarial_training --train "$DATA/sst2_train.tsv" -o "$OUT/lora" --no-progress \
    --set steps=40 --set batch_size=8 --set max_length=48 --set lora_layers=8 --set max_rows=4000 \
    --set n_attack=12 --set attack_budget=20 --probe performance.sst2 --probe robustness.attack
fi
uptime >> "$OUT/times.txt"
echo "results in $OUT"
