"""``--engine ray``: the same scorers as a Ray Data pipeline on a local Ray instance give the same scores as the
single-process path (skipped when Ray is not installed: ``pip install 'lmcritic[ray]'``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmcritic.monitor.ingest import ingest
from lmcritic.monitor.scoring import RequestScorer, ScoringConfig, Step, score_store
from lmcritic.store.monitor import MonitorStore

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

STEPS = (Step("prompt", "pii"), Step("response", "pii"), Step("response", "refusal"), Step("prompt", "length"),
         Step("prompt", "register"), Step("response", "toxicity"), Step("comment", "vader"))


def test_ray_pipeline_gives_identical_scores(tmp_path: Path) -> None:
    rows = [{"timestamp": 1_790_000_000 + i, "prompt": f"gonna ask {i}: mail me at a{i}@example.com" if i % 7 == 0
             else f"what is {i} plus {i}?", "response": "I'm sorry, I can't." if i % 5 == 0 else f"It is {2 * i}.",
             "feedback": {"thumbs": i % 3 == 0, "comment": "awful" if i % 2 else "great"}} for i in range(300)]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = []
    for engine in ("local", "ray"):
        with MonitorStore(tmp_path / f"{engine}.sqlite") as store:
            ingest(store, [log])
            scorer = RequestScorer(ScoringConfig(STEPS), store)
            if engine == "ray":
                from lmcritic.monitor.ray_engine import score_store_ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
                try:
                    assert score_store_ray(store, scorer, batch_size=64) == 300
                finally:
                    ray.shutdown()
            else:
                assert score_store(store, scorer) == 300
            scores.append({rid: s for chunk in store.iter_scored(scorer.fingerprint) for rid, _, s, _ in chunk})
    local, distributed = scores
    assert local.keys() == distributed.keys()
    for rid in local:
        assert local[rid].keys() == distributed[rid].keys()
        for key, value in local[rid].items():
            assert distributed[rid][key] == pytest.approx(value, abs=1e-6), (rid, key)
