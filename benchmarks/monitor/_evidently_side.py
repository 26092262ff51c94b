"""Evidently's side of bench_drift.py (runs in benchmarks/.work/venv-evidently): DataDriftPreset per window.

    _evidently_side.py REQUESTS.csv REFERENCE_WINDOWS OUT.json [MODES]

MODES: comma-separated, default ``descriptors,scores``; results of other modes already in OUT.json are kept.

Two configurations, each at Evidently's default per-column tests and thresholds:
* ``descriptors``: what Evidently offers offline for text — TextLength, WordCount and NonLetterCharacterPercentage
  of prompt and response, its text-content drift on both text columns (a domain classifier), two RegExp
  descriptors a practitioner would add (an e-mail/phone pattern on responses, an "ignore previous instructions"
  pattern on prompts; its Sentiment/OOV descriptors need NLTK downloads, impossible offline), plus topic and
  thumbs columns;
* ``scores``: lmcritic's per-request scores as plain columns, plus topic and thumbs.
A window "alerts" when any column drifts (``any column``) or, Evidently's dataset-level verdict, when at least
half of the columns drift (``dataset drift``).
"""
from __future__ import annotations

import json
import sys
import time
import warnings

import pandas as pd

warnings.filterwarnings("ignore")

PII = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}|\+?\d[\d\s().-]{7,}\d"
ERRORS: list[str] = []
INJECTION = r"(?i)ignore (?:all |any )?(?:the )?(?:previous|prior|above) instructions"


def descriptors():
    from evidently.descriptors import NonLetterCharacterPercentage, RegExp, TextLength, WordCount

    out = []
    for col in ("prompt", "response"):
        out += [TextLength(col, alias=f"{col}_length"), WordCount(col, alias=f"{col}_words"),
                NonLetterCharacterPercentage(col, alias=f"{col}_nonletter")]
    return out + [RegExp("response", reg_exp=PII, alias="response_pii_regexp"),
                  RegExp("prompt", reg_exp=INJECTION, alias="prompt_injection_regexp")]


def run_mode(df: pd.DataFrame, ref_windows: int, mode: str, score_cols: list[str]) -> dict[str, dict[int, list[str]]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if mode == "descriptors":
        cols = ["prompt", "response", "topic", "thumb"]
        definition = DataDefinition(text_columns=["prompt", "response"], categorical_columns=["topic", "thumb"])
        desc = descriptors()
    else:
        cat = [c for c in score_cols if c.endswith(".code")]
        cols = score_cols + ["topic", "thumb"]
        definition = DataDefinition(numerical_columns=[c for c in score_cols if c not in cat],
                                    categorical_columns=cat + ["topic", "thumb"])
        desc = []
    def make(part: pd.DataFrame):
        return Dataset.from_pandas(part[cols].reset_index(drop=True), data_definition=definition, descriptors=desc)

    ref = make(df[df.window < ref_windows])
    anycol, dataset = {}, {}
    for w in sorted(df.window.unique()):
        if w < ref_windows:
            continue
        try:
            snap = Report([DataDriftPreset()]).run(make(df[df.window == w]), ref).dict()
        except ValueError as err:  # e.g. its text-drift classifier on a window of identical texts
            ERRORS.append(f"{mode} window {w}: {err}")
            anycol[int(w)], dataset[int(w)] = [], []
            continue
        drifted, share = _drifted(snap)
        anycol[int(w)] = drifted
        dataset[int(w)] = ["dataset"] if share >= 0.5 else []
    return {f"{mode} (any column)": anycol, f"{mode} (dataset drift)": dataset}


def _drifted(snap: dict) -> tuple[list[str], float]:
    out, share = [], 0.0
    for m in snap["metrics"]:
        cfg = m.get("config", {})
        if cfg.get("type", "").endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif cfg.get("type", "").endswith("ValueDrift"):
            value, thr, method = float(m["value"]), float(cfg["threshold"]), cfg.get("method", "")
            hit = value < thr if "p_value" in method else value >= thr
            if hit:
                out.append(cfg["column"])
    return sorted(out), share


def main() -> int:
    import evidently

    path, ref_windows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    wanted = (sys.argv[4] if len(sys.argv) > 4 else "descriptors,scores").split(",")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    df["thumb"] = df["thumb"].map({1: "up", -1: "down"}).fillna("none")
    df["topic"] = df["topic"].fillna("none").astype(str)
    df["prompt"], df["response"] = df["prompt"].fillna(""), df["response"].fillna("")
    score_cols = [c for c in df.columns if c.startswith(("prompt.", "response.", "feedback."))]
    for c in score_cols:
        df[c] = df[c].astype(str) if c.endswith(".code") else pd.to_numeric(df[c], errors="coerce")
    modes, timings = {}, {}
    try:
        with open(out) as fh:
            old = json.load(fh)
        modes = {k: v for k, v in old["modes"].items() if k.split(" (")[0] not in wanted}
        timings = {k: v for k, v in old["seconds"].items() if k not in wanted}
    except (OSError, ValueError, KeyError):
        pass
    for mode in wanted:
        t0 = time.perf_counter()
        modes.update(run_mode(df, ref_windows, mode, score_cols))
        timings[mode] = time.perf_counter() - t0
    with open(out, "w") as fh:
        json.dump({"version": evidently.__version__, "modes": modes, "seconds": timings, "errors": ERRORS}, fh,
                  indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
