"""A synthetic production log with planted changes at known times, built from the project's own data.

Prompts: SST-2 training sentences (``/work/shared/data`` or ``../shared/data``) put into four app features
(``topic``: classify, summarize, translate, reply), the project's injection tasks
(``lmcritic/data/robustness/injection_tasks.jsonl``) and the project's colloquial-register perturbation
(``lmcritic.perturb.register.ToColloquial``). Responses come from a cheap deterministic template responder,
not a model (a response per topic; refusals at a fixed base rate; PII-bearing answers with names from the
project's ``first_names.txt`` and generated e-mails/phones; "PWNED" for half the successful-looking injections).
Feedback: 30% of requests are rated, thumbs-down with a fixed base probability.

Timeline (requests, one every ~3.6 s from 2026-11-01T00:00Z; windows of 500 requests):
  0–4000 reference · 4000–8000 control (no change) · 8250–11000 colloquial register (35% of prompts) ·
  12250–15000 injection wave (6% of prompts) · 16250–19000 PII in responses (0.5% → 4%) ·
  20250–24000 thumbs-down on topic "summarize" (15% → 45%).
Onsets sit mid-window so the first window after an onset is half changed.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
N = 24_000
T0 = 1_793_491_200.0  # 2026-11-01T00:00:00Z
EPISODES = (
    {"name": "control", "kind": "none", "start": 4000, "end": 8000},
    {"name": "register", "kind": "colloquial register", "start": 8250, "end": 11000},
    {"name": "injection", "kind": "injection wave", "start": 12250, "end": 15000},
    {"name": "pii", "kind": "PII in responses", "start": 16250, "end": 19000},
    {"name": "feedback", "kind": "feedback drop on topic summarize", "start": 20250, "end": 24000},
)
TOPICS = ("classify", "summarize", "translate", "reply")
TEMPLATES = {
    "classify": "Is this movie review positive or negative? {s}",
    "summarize": "Summarize this review in a few words: {s}",
    "translate": "Translate into French: {s}",
    "reply": "A customer wrote this about our streaming service: \"{s}\" Write a short reply.",
}
REFUSAL = "I'm sorry, but I can't help with that request."
NEG_COMMENTS = ("not what I asked", "wrong answer", "useless summary", "this is bad", "too short, missed the point")
POS_COMMENTS = ("great, thanks", "helpful", "perfect", "nice")


def sst2(path: Path | None) -> list[tuple[str, int]]:
    for p in [path] if path else [Path("/work/shared/data/sst2_train.tsv"), ROOT.parent / "shared/data/sst2_train.tsv"]:
        if p and p.is_file():
            with p.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
            return [(r[0].strip(), int(r[1])) for r in rows if len(r) == 2 and len(r[0].split()) >= 6]
    raise SystemExit("SST-2 train TSV not found: pass --sst2 PATH")


def active(i: int, name: str) -> bool:
    e = next(e for e in EPISODES if e["name"] == name)
    return e["start"] <= i < e["end"]


class Builder:
    def __init__(self, sentences: list[tuple[str, int]], seed: int = 0) -> None:
        from lmcritic.datasets import packaged
        from lmcritic.perturb.register import ToColloquial

        self.rng = random.Random(seed)
        self.sentences = sentences
        self.injections = [json.loads(line)
                           for line in packaged("robustness/injection_tasks.jsonl").read_text().splitlines()]
        names = packaged("safety/first_names.txt").read_text(encoding="utf-8").split()
        self.names = [n for n in names if n.isalpha() and not n.startswith("#")][:200]
        self.colloquial = ToColloquial()

    def row(self, i: int) -> dict:
        rng = self.rng
        text, label = rng.choice(self.sentences)
        topic = rng.choice(TOPICS)
        if active(i, "register") and rng.random() < 0.35:
            done = self.colloquial(text, random.Random(i))
            text = done[0] if done else text
        prompt = TEMPLATES[topic].format(s=text)
        injected = rng.random() < (0.06 if active(i, "injection") else 0.003)
        if injected:
            task = rng.choice(self.injections)
            prompt, topic = f"{task['instruction']}\n\n{task['injected_document']}", "summarize"
        response = self.respond(topic, text, label, injected, i)
        return {"timestamp": round(T0 + i * 3.6 + rng.random(), 3), "prompt": prompt, "response": response,
                "model": "assistant-v3", "request_id": f"r{i:06d}", "topic": topic, **self.feedback(i, topic)}

    def respond(self, topic: str, text: str, label: int, injected: bool, i: int) -> str:
        rng = self.rng
        if injected and rng.random() < 0.5:
            return "PWNED"
        if rng.random() < 0.03:
            return REFUSAL
        words = text.split()
        base = {"classify": f"The review is {'positive' if label else 'negative'}.",
                "summarize": "In short: " + " ".join(words[: max(4, len(words) // 3)]) + "...",
                "translate": "Voici la traduction : « " + text + " »",
                "reply": "Thank you for your feedback! We are glad you shared your thoughts "
                         "and will pass them on."}[topic]
        if rng.random() < (0.04 if active(i, "pii") else 0.005):
            first = rng.choice(self.names).capitalize()
            last = rng.choice(("Smith", "Garcia", "Nguyen", "Okafor"))
            base += (f" For details contact {first} {last} at {first.lower()}.{last.lower()}@example.com or "
                     f"+1 415 555 {rng.randint(1000, 9999)}.")
        return base

    def feedback(self, i: int, topic: str) -> dict:
        rng = self.rng
        if rng.random() >= 0.3:
            return {}
        p_neg = 0.45 if active(i, "feedback") and topic == "summarize" else 0.15
        thumb = "down" if rng.random() < p_neg else "up"
        fb: dict = {"thumbs": thumb}
        if rng.random() < 0.5:
            fb["comment"] = rng.choice(NEG_COMMENTS if thumb == "down" else POS_COMMENTS)
        return {"feedback": fb}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/.work/monitor"))
    ap.add_argument("--sst2", type=Path)
    ap.add_argument("--n", type=int, default=N)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    b = Builder(sst2(args.sst2))
    with (out / "traffic.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(args.n):
            fh.write(json.dumps(b.row(i), ensure_ascii=False) + "\n")
    (out / "truth.json").write_text(json.dumps({"n": args.n, "window": 500, "reference_end": 4000,
                                                "episodes": EPISODES}, indent=1))
    print(f"{out / 'traffic.jsonl'}: {args.n} requests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
