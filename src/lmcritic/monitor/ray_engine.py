"""``--engine ray``: the same per-request scorers as a Ray Data pipeline, for logs beyond one machine.

The driver pages through the unscored requests (bounded memory, as the local path), hands each page to Ray Data
as a dataset, and ``map_batches`` runs a pool of actors that each build the same :class:`RequestScorer` once
(from the same :class:`ScoringConfig`) and score their batches; the driver stores the results under the same
score-set fingerprint, so a Ray run and a local run are interchangeable (tested: identical scores). Connects to
a running cluster when ``RAY_ADDRESS`` is set, else starts a local instance.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from lmcritic._serde import from_jsonable, to_jsonable
from lmcritic.errors import ConfigError
from lmcritic.monitor.schema import LogRecord
from lmcritic.monitor.scoring import RequestScorer, ScoringConfig
from lmcritic.store.monitor import MonitorStore, StoredRequest

PAGE = 4096


class _ScoreActor:
    """One per Ray worker: the scorers are built once and reused for every batch."""

    def __init__(self, config: dict[str, Any]) -> None:
        cfg = from_jsonable(ScoringConfig, config)
        lm = None
        if cfg.model:
            from lmcritic.backends import ModelSpec, load_model

            lm = load_model(ModelSpec(cfg.model, cfg.backend))
        self.scorer = RequestScorer(cfg, None, lm)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        reqs = [StoredRequest(int(i), LogRecord(0.0, p, r, thumb=_opt_int(t), feedback_score=_opt_float(s),
                                                feedback_comment=c), None, None)
                for i, p, r, t, s, c in zip(batch["id"], batch["prompt"], batch["response"], batch["thumb"],
                                            batch["fscore"], batch["comment"])]
        scores = self.scorer.score(reqs)
        return {"id": [r.id for r in reqs], "scores": [json.dumps(scores[r.id]) for r in reqs]}


def score_store_ray(store: MonitorStore, scorer: RequestScorer, batch_size: int = 256, concurrency: int = 2,
                    progress: Callable[[int], None] | None = None) -> int:
    """Score every request not yet scored under ``scorer``'s fingerprint with Ray Data; returns how many."""
    ray = _ray()
    if not ray.is_initialized():
        import os

        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if os.environ.get("RAY_ADDRESS") else
                 concurrency, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    config = to_jsonable(scorer.config)
    done = 0
    for page in store.unscored(scorer.fingerprint, PAGE):
        ds = ray.data.from_items([_item(r) for r in page])
        out = ds.map_batches(_ScoreActor, fn_constructor_kwargs={"config": config}, batch_size=batch_size,
                             concurrency=concurrency, batch_format="numpy")
        scores = {int(row["id"]): json.loads(row["scores"]) for row in out.iter_rows()}
        store.save_scores(scorer.fingerprint, scores)
        done += len(page)
        if progress:
            progress(len(page))
    return done


def _item(r: StoredRequest) -> dict[str, Any]:
    rec = r.record
    return {"id": r.id, "prompt": rec.prompt, "response": rec.response, "thumb": rec.thumb,
            "fscore": rec.feedback_score, "comment": rec.feedback_comment}


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("--engine ray needs Ray Data", "pip install 'lmcritic[ray]', or use --engine local") \
            from None
    return ray


def _opt_int(v: Any) -> int | None:
    return None if v is None or v != v else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None or v != v else float(v)


__all__: Sequence[str] = ("score_store_ray",)
