"""Training-time mitigations that ADD to the training corpus, then fine-tune: domain augmentation (generalization
mismatch) here; counterfactual augmentation (data bias) is in ``counterfactual``, adversarial training (fragility)
in ``adversarial``.

Every mitigation here follows :class:`Retrain`: load the corpus (malformed rows are errors naming file:line),
refuse rows that are evaluation cases of the run, transform the rows (the mitigation itself), drop any generated
row that happens to be an evaluation case, write the exact rows to ``train_rows.tsv``, and fine-tune with the
backend's trainer (:mod:`lmcritic.mitigate.trainers`). Augmentation starts from training rows only.
"""
from __future__ import annotations

import random
from abc import abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Sequence

from lmcritic.errors import ConfigError
from lmcritic.mitigate import _base_model
from lmcritic.mitigate import _heldout as held
from lmcritic.mitigate.base import TRAINING, MitigatedModel, Mitigation, MitigationContext
from lmcritic.mitigate.data import Row, TrainingSet, check_disjoint, load_training, split_overlap
from lmcritic.mitigate.trainers import (
    ModelTrainer,
    TaskFormat,
    TrainConfig,
    Trained,
    total_steps,
    train_config,
    trainer_for,
)

PAIRING = 1.0  # the pairing loss on the scale of a row's cross-entropy


def paired_when_continuing(config: TrainConfig) -> TrainConfig:
    """Logit pairing on (weight :data:`PAIRING`) unless asked otherwise, when the run's weights train on; off from
    a fresh start (``base``, ``from_scratch``), which has no learnt association to unlearn."""
    if config.pairing is not None:
        return config
    return replace(config, pairing=0.0 if config.base or config.from_scratch else PAIRING)


PAIRING_NOTE = ("the fine-tune continues from the run's weights, which hold the association already, and "
                "cross-entropy on the swapped copies stops once each is on the right side: counterfactual logit "
                f"pairing (weight {PAIRING:g}) also trains each copy's class probabilities onto its original's")


class Retrain(Mitigation):
    """Edit the training rows, then fine-tune the run's model on them."""

    kind = TRAINING
    needs = frozenset({"weights", "train"})
    produces = "model folder"  # fine-tuned weights (safetensors) + the model spec that loads them
    decontaminates = False  # True: evaluation cases in the corpus are removed rather than refused
    removes = False  # True: taking rows out is the fix (dedup, label repair's drop), which weights that train on
    # do not unlearn; a fix that merely samples the corpus (adversarial training's max_rows) is not one

    def apply(self, ctx: MitigationContext) -> MitigatedModel:
        if ctx.train is None:
            raise ConfigError(f"{self.name} retrains on the training corpus", "pass --train PATH (text, label)")
        trainer = trainer_for(ctx.backend_name(), self.name)
        self.config, started = _base_model.resolve(self.config, ctx.model_spec)
        task = held.task_of(ctx)
        evals = ctx.eval_texts()
        corpus = load_training(ctx.train, task.labels)
        data, dropped = check_disjoint(corpus, evals, ctx.run_id, ctx.decontaminate or self.decontaminates)
        new, details = self.transform(ctx, data)
        given = data if ctx.decontaminate else corpus  # dropping evaluation rows is dedup's own edit
        if new.rows == given.rows and not self.edits_while_training():
            raise ConfigError(f"{self.name} left the training corpus as it was ({_said(details)}); a fine-tune on it "
                              "would be retraining alone, not this fix",
                              "choose another method from lmcritic mitigations, or change its settings with --set")
        new, leaked = split_overlap(new, evals)
        notes = [f"{len(leaked)} generated rows were evaluation cases and were left out"] if leaked else []
        notes += started + details.pop("notes", []) + self._keep_budget(len(given), len(new))
        trained, new = self.fit(ctx, trainer, new, task)
        base_hint = _base_model.hint(ctx.model_spec) if trained.details.get("init") == "model" else ""
        notes += removal_note(len(corpus) - len(new), trained.details.get("init"), base_hint) if self.removes else []
        notes += self.training_notes(trained)
        new.write_tsv(ctx.out_dir / "train_rows.tsv")  # the exact rows trained on (with any made while training)
        details = {**details, "rows_before": len(data) + dropped, "rows_after": len(new), "rows": new.counts(),
                   "evaluation_rows_removed": dropped, "training": trained.details,
                   "base_hint": base_hint}
        # the control keeps the corpus as given unless the user decontaminated it (without that, ``data`` differs
        # from ``corpus`` only where removing evaluation cases is this fix's own edit: dedup)
        control = self.control(ctx, trainer, data if ctx.decontaminate else corpus, task, trained) \
            if ctx.control else None
        if control is not None:
            details["control"] = {**control.details, "model_dir": control.model_dir}
        return MitigatedModel(self.name, trained.spec, TRAINING, model_dir=trained.model_dir, details=details,
                              notes=tuple(notes), control=control.spec if control else None)

    def _keep_budget(self, given: int, left: int) -> list[str]:
        """A fix that takes rows out trains ``epochs`` counted over the corpus as given: over the rows left, the
        removal would also cut the training (label_noise_global seed 10: 703 of 2,000 rows dropped, 94 -> 61 steps,
        failure 0.295 -> 0.310; with 94 steps 0.235), confounding what the rows did with how long the model trained.
        The control arm trains the same steps either way."""
        if not self.removes or self.config.epochs is None or left >= given:
            return []
        epochs, steps = self.config.epochs, total_steps(self.config, given)
        self.config = replace(self.config, steps=steps, epochs=None)
        return [f"{steps} optimizer steps: epochs={epochs:g} counted over the corpus as given ({given} rows), not "
                f"the {left} left, so taking rows out does not also shorten training"]

    pairing_note = ""  # said when this fix turned logit pairing on by its own choice and rows were paired

    def training_notes(self, trained: Trained) -> list[str]:
        """What the fine-tune itself did that the user should read (beside the corpus edit): pairing asked for but
        not applied, or turned on by the fix itself (a trainer that does not count paired rows is taken at its
        word)."""
        pairing = trained.details.get("pairing")
        if self.settings().pairing and not pairing:
            return ["logit pairing was not applied: it compares the class probabilities of a classifier head, "
                    "which this model's trainer does not give it"]
        paired = trained.details.get("paired_examples") != 0
        if pairing and paired and self.pairing_note and self.config.pairing is None:
            return [self.pairing_note]
        return []

    def edits_while_training(self) -> bool:
        """Whether ``fit`` adds rows of its own (adversarial rounds), so an unchanged corpus is not a no-op."""
        return False

    @abstractmethod
    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        """The edited training rows, and what was done (counts, the tokens or groups acted on)."""

    def fit(self, ctx: MitigationContext, trainer: ModelTrainer, data: TrainingSet,
            task: TaskFormat) -> tuple[Trained, TrainingSet]:
        """Fine-tune the run's model on ``data`` once; returns the result and the rows it was trained on."""
        trained = trainer.train(ctx.model_spec, data, task, ctx.out_dir, self.settings(), ctx.seed, ctx.progress)
        return trained, data

    def settings(self) -> TrainConfig:
        """The fine-tune's settings: the config's, with any choice left to this mitigation made."""
        return train_config(self.config)

    def control(self, ctx: MitigationContext, trainer: ModelTrainer, data: TrainingSet, task: TaskFormat,
                trained: Trained) -> Trained:
        """The control arm: the same fine-tune (same start, settings, seed and number of steps) on the corpus as
        given. Retraining alone moves a model (a fresh start, more steps), so the fix is judged against this as
        well as against the run's model. Evaluation cases the user removed (``--decontaminate``) stay out of both
        arms; those a fix removes as its own edit (dedup: memorised evaluation rows) stay in the control, as they
        were in the run's model."""
        steps = int(trained.details.get("steps") or self.config.steps)
        config = replace(self.settings(), steps=steps, epochs=None)
        out = ctx.out_dir / "control"
        data.write_tsv(out / "train_rows.tsv")
        return trainer.train(ctx.model_spec, data, task, out, config, ctx.seed, ctx.progress)


def _said(details: dict[str, Any]) -> str:
    """What the transform reported, in one line (its counts and settings, not long lists)."""
    return ", ".join(f"{k}={v}" for k, v in details.items() if isinstance(v, (int, float, str)) and k != "notes") \
        or "no edit"


def removal_note(removed: int, init: str | None, base_hint: str = "") -> list[str]:
    """Rows taken out of the corpus are not unlearnt by training on the weights that learnt them (``base_hint``:
    :func:`_base_model.hint`, how to retrain from the base the model declares)."""
    if removed <= 0 or init != "model":
        return []
    return [f"{removed} rows were removed from the corpus, but the fine-tune continued from the run's weights, "
            "which keep what they learnt from them; --set base=PATH (the checkpoint the run's model was fine-tuned "
            f"from) retrains without them{base_hint}"]


# -- perturbation (adversarial training, domain augmentation) ------------------------------------
def perturbed_copies(rows: Sequence[Row], names: Sequence[str], fraction: float, rng: random.Random,
                     origin: str | None = None) -> list[Row]:
    """One perturbed copy (a perturbation picked at random from ``names``) of a ``fraction`` of the rows."""
    from lmcritic.perturb import perturbation

    perturbers = [(n, perturbation(n)) for n in names]
    out = []
    for r in rows:
        if not perturbers or rng.random() >= fraction:
            continue
        name, fn = rng.choice(perturbers)
        done = fn(r.text, rng)
        if done and done[0] != r.text:
            out.append(Row(done[0], r.label, r.weight, origin or f"perturb:{name}", r.line, twin=r.text))
    return out


# -- domain augmentation -----------------------------------------------------------------------------
REGISTERS = {"colloquial": "to_colloquial", "formal": "to_formal"}


@dataclass(frozen=True)
class DomainConfig(TrainConfig):
    register: str | None = None  # colloquial | formal; None: the culprit's register, else colloquial
    fraction: float = 0.5  # share of rows given a register-shifted copy
    in_domain: str | None = None  # labelled in-domain rows to add (.tsv/.csv/.jsonl)
    length_match: bool | None = None  # None: when the culprit is a length band
    unseen: str = "refuse"  # refuse | train: when most failures hold words no training row has (out of reach)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.register is not None and self.register not in REGISTERS:
            raise ValueError(f"register must be one of {sorted(REGISTERS)}")
        if self.unseen not in ("refuse", "train"):
            raise ValueError("unseen must be 'refuse' or 'train'")


class DomainAugmentation(Retrain):
    """Register-shifted copies of training rows, labelled in-domain rows, or length-matched reweighting."""

    name = "domain_augmentation"
    title = "domain augmentation (register-shifted, in-domain or length-matched rows)"
    treats = frozenset({"generalization_mismatch"})
    probes = ("robustness.register",)
    culprits = frozenset({"register", "length"})
    preference = 0.9
    Config = DomainConfig

    def transform(self, ctx: MitigationContext, data: TrainingSet) -> tuple[TrainingSet, dict[str, Any]]:
        c = ctx.target.culprit
        register = self.config.register or (c.value if c and c.kind == "register" and c.value in REGISTERS
                                            else "colloquial")
        rng = random.Random(ctx.seed)
        shifted = perturbed_copies(data.rows, [REGISTERS[register]], self.config.fraction, rng, f"register:{register}")
        extra = self._in_domain(data)
        rows = list(data.rows) + shifted + extra
        band = c.value if c and c.kind == "length" else None
        if self.config.length_match or (self.config.length_match is None and band):
            rows = length_reweigh(rows, band or "")
        details: dict[str, Any] = {"register": register, "register_rows": len(shifted), "in_domain_rows": len(extra),
                                   "length_band": band}
        if not extra and not band:
            details.update(self._reach(ctx, rows))
        return data.with_rows(rows), details

    def _reach(self, ctx: MitigationContext, rows: Sequence[Row]) -> dict[str, Any]:
        """Refuse to fine-tune when the defect is out of the corpus's reach (:func:`_coverage.out_of_reach`):
        register plant, held-out seed 10, trained anyway: 0.33 -> 0.41 of the slang failing (p 0.021); seeds 0,
        5 and 6 unchanged. ``--set unseen=train`` fine-tunes anyway."""
        from lmcritic.mitigate._coverage import out_of_reach, unseen_words

        found = unseen_words(ctx, rows)
        if self.config.unseen == "refuse" and out_of_reach(found):
            raise ConfigError(f"{self.name}: {found['failures_holding_unseen']:.0%} of the defect's failures hold "
                              f"words no training row has, augmented or not ({', '.join(found['unseen_words'])}), "
                              f"and such cases fail {found['failure_with_unseen']:.2f} vs "
                              f"{found['failure_without_unseen']:.2f}: rewriting the corpus cannot teach them",
                              "add labelled in-domain rows with --set in_domain=PATH, rewrite such inputs at "
                              "inference time with --method normalize_input, or fine-tune anyway with --set "
                              "unseen=train")
        return found

    def _in_domain(self, data: TrainingSet) -> list[Row]:
        if not self.config.in_domain:
            return []
        from dataclasses import replace

        return [replace(r, origin="in_domain") for r in load_training(self.config.in_domain, data.labels).rows]


def length_reweigh(rows: Sequence[Row], band: str) -> list[Row]:
    """Weight rows inside the failing length band (``"lo-hi"`` words, or ``long``/``short``: the top/bottom
    tertile) so the band carries as much weight as the rest of the corpus."""
    from dataclasses import replace

    lengths = sorted(len(r.text.split()) for r in rows)
    lo, hi = _band(band, lengths)
    inside = [lo <= len(r.text.split()) <= hi for r in rows]
    k = sum(inside)
    if not k or k == len(rows):
        return list(rows)
    w = (len(rows) - k) / k
    return [replace(r, weight=r.weight * w) if i else r for r, i in zip(rows, inside)]


def _band(band: str, lengths: Sequence[int]) -> tuple[int, int]:
    if "-" in band and all(p.strip().isdigit() for p in band.split("-", 1)):
        a, b = band.split("-", 1)
        return int(a), int(b)
    third = lengths[len(lengths) // 3], lengths[2 * len(lengths) // 3]
    return (third[1], 10**9) if band in ("long", "high") else (0, third[0])


__all__ = ["DomainAugmentation", "Retrain", "length_reweigh", "paired_when_continuing", "perturbed_copies"]
