"""The share of each word's label lean that its mislabelled rows account for, per stored trial, against the plant's
truth (relabelled rows / 200 word rows, over the diagnosed lean). Run from the repository root after run_hf.py."""
from __future__ import annotations

import glob
import json
import re

for path in sorted(glob.glob("benchmarks/.work/hf_trials*/word_*/diagnosis.json")):
    found = None
    for defect in json.load(open(path))["defects"]:
        for c in defect["causes"]:
            mix = ((c.get("culprit") or {}).get("data") or {}).get("label_mix") or {}
            if c["cause"] == "label_noise" and "explained" in mix:
                found = c, mix["explained"]
    trial = "/".join(path.split("/")[2:4])
    if found is None:
        print(f"{trial}: no share (no supported word label mix decided by a content reader)")
        continue
    c, share = found
    lean = c["culprit"]["effect"]["value"]
    row = json.load(open(path.replace("diagnosis.json", "row.json")))
    flipped = re.match(r"(\d+) of the", row.get("description", "")) if "word_noise" in trial else None
    truth = (int(flipped.group(1)) / 200 / lean) if flipped else 0.0
    print(f"{trial}: {c['verdict']}, share {share['value']:.2f} [{share['ci_low']:.2f}, {share['ci_high']:.2f}], "
          f"lean {lean:.3f}, truth {truth:.2f}")
