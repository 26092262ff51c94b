"""Run stages: work that follows the probes and reads their records (explain the worst failures, diagnose).

A stage is a function ``fn(ctx: StageContext, **config) -> None`` registered under a name. It stores what it
makes in the run (records/findings under its own keys), so the report shows it and a resumed run skips a
finished stage. Stages run in spec order after every probe, through the same cached, budgeted backend.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from lmcritic.registry import Registry

if TYPE_CHECKING:
    from lmcritic.backends.base import Backend
    from lmcritic.spec import RunSpec
    from lmcritic.store.runs import RunStore

StageFn = Callable[..., None]
STAGES: Registry[StageFn] = Registry("stages")
# The keys under which the built-in stages store their records and findings (``RunStore`` kind "stage").
EXPLANATIONS_KEY = "interpret.explanations"
DIAGNOSIS_KEY = "diagnose"


@dataclass(frozen=True)
class StageContext:
    """What a stage gets: the run store, the run id, the run's (cached, budgeted) model and its spec."""

    store: RunStore
    run_id: str
    model: Backend
    spec: RunSpec


def check_config(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config checked before any work: unknown options refused (the function's keyword parameters are
    the options), values checked and converted against their annotations."""
    from lmcritic._typecheck import check_kwargs

    return check_kwargs(STAGES.get(name), config, f"stage {name}")


def run_stage(name: str, ctx: StageContext, config: dict[str, Any]) -> None:
    STAGES.get(name)(ctx, **check_config(name, config))


def explain_stage(ctx: StageContext, k: int = 5, methods: list[str] | None = None, triggers: Sequence[str] = (),
                  faithfulness: bool = True) -> None:
    """Explain the run's ``k`` most confident failures with two methods and their faithfulness."""
    from lmcritic.interpret import attributor
    from lmcritic.interpret.run import explain_worst

    chosen = [attributor(m) for m in methods] if methods else None
    explain_worst(ctx.model, ctx.store, ctx.run_id, k=k, methods=chosen, triggers=tuple(triggers),
                  faithfulness=faithfulness)


AUTO_QUERIES = {"generates": 1500, "classifies": 4000}  # max_queries "auto", by what one re-scored case costs


def diagnose_stage(ctx: StageContext, train: str | None = None, reference: str | None = None,
                   probes: list[str] | None = None, max_queries: int | Literal["auto"] | None = 4000,
                   max_cases: int = 24) -> None:
    """Defects → tested causes → evidence → mitigation, stored in the run (see :mod:`lmcritic.diagnose`)."""
    from lmcritic.diagnose.api import DiagnoseConfig, diagnose_run

    config = DiagnoseConfig(probes=tuple(probes) if probes else None, max_queries=_queries(max_queries, ctx.model),
                            max_cases=max_cases)
    diagnose_run(ctx.store, ctx.run_id, model=ctx.model, train=train, reference=reference, config=config)


def _queries(value: int | str | None, model: Backend) -> int | None:
    """``auto``: a model that only classifies (a classification head: one forward pass per re-scored case) gets
    the ``diagnose`` command's budget; one that generates, whose cases cost far more, the smaller one. The
    default scan once gave a topic classifier's diagnosis 1,500 cases, spent on its first defect, and its later
    defects went untested."""
    from lmcritic.requests import Capability

    if value != "auto":
        return None if value is None else int(value)
    caps = model.capabilities
    only_classifies = Capability.CLASSIFY in caps and Capability.GENERATE not in caps
    return AUTO_QUERIES["classifies" if only_classifies else "generates"]


STAGES.add("interpret.explain", explain_stage)
STAGES.add("diagnose", diagnose_stage)

__all__ = ["DIAGNOSIS_KEY", "EXPLANATIONS_KEY", "STAGES", "StageContext", "check_config", "run_stage"]
