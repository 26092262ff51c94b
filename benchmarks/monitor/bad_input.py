"""Bad input for ``lmcritic monitor ingest``: one log line of each kind of damage, a clean log and a copy of it,
ingested twice; the CLI's own output goes to ``benchmarks/results/monitor_bad_input_latest.md``.

    .venv/bin/python benchmarks/monitor/bad_input.py
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LMCRITIC = ROOT / ".venv/bin/lmcritic"
T0 = 1_793_491_200


def ok(i: int) -> bytes:
    return json.dumps({"timestamp": T0 + i, "prompt": f"hello {i}", "response": f"hi {i}"}).encode()


DAMAGED = [  # (what, line)
    ("a good line", ok(0)),
    ("truncated JSON", b'{"timestamp": 1793491201, "prompt": "cut sho'),
    ("wrong type (response is a number)", b'{"timestamp": 1793491202, "prompt": "x", "response": 3}'),
    ("missing field (no prompt)", b'{"timestamp": 1793491203, "response": "no prompt"}'),
    ("huge line (3 MB)", json.dumps({"timestamp": T0 + 4, "prompt": "y" * 3_000_000, "response": "z"}).encode()),
    ("invalid UTF-8", b'{"timestamp": 1793491205, "prompt": "caf\xe9", "response": "r"}'),
    ("not an object", b"[1, 2, 3]"),
    ("bad timestamp", b'{"timestamp": "yesterday-ish", "prompt": "p", "response": "r"}'),
    ("invalid JSON", b"{not json at all}"),
    ("a good line", ok(9)),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "bad.jsonl").write_bytes(b"\n".join(line for _, line in DAMAGED) + b"\n")
        good = b"".join(ok(i) + b"\n" for i in range(10, 20))
        (d / "good.jsonl").write_bytes(good)
        (d / "good_copy.jsonl").write_bytes(good)
        env = {**os.environ, "LMCRITIC_HOME": str(d / "home")}
        out = ["# `lmcritic monitor ingest` on bad input", "", "Lines of `bad.jsonl`: " +
               "; ".join(f"{i + 1}: {what}" for i, (what, _) in enumerate(DAMAGED)) +
               ". `good_copy.jsonl` is a copy of `good.jsonl` (10 lines).", ""]
        for title, args in (("first run", ["ingest", "bad.jsonl", "good.jsonl", "good_copy.jsonl"]),
                            ("second run (the same files)", ["ingest", "bad.jsonl", "good.jsonl", "good_copy.jsonl"]),
                            ("status", ["status"])):
            proc = subprocess.run([str(LMCRITIC), "monitor", *args], cwd=d, env=env, capture_output=True, text=True)
            text = (proc.stdout + proc.stderr).replace(str(d) + "/", "")
            out += [f"## {title}: `lmcritic monitor {' '.join(args)}` (exit {proc.returncode})", "", "```",
                    text.rstrip(), "```", ""]
    path = ROOT / "benchmarks/results/monitor_bad_input_latest.md"
    path.write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
