"""Gradient word importance for white-box (``GRADIENTS``) backends, through ``Backend.white_box()``: one
forward+backward pass instead of one query per word. Importance of a word = L2 norm of d(objective)/d(input
embedding), max over its sub-word tokens (the ranking TextAttack's ``wir_method="gradient"`` uses, with L2
instead of L1).

Objective: classifier heads — log p(correct label); prompted causal LMs — LL(correct) − LL(best rival)
of the answer continuations, both scored in one batch from the same prompt embeddings.

The same pass also yields each word's mean embedding gradient, from which :class:`Estimator` predicts, to
first order (HotFlip, Ebrahimi et al. 2018, generalised to words that re-tokenize into other pieces), how a
candidate replacement moves the objective — so candidates can be ordered before any of them is queried.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.attacks.base import Example, State
from lmcritic.backends.base import Backend
from lmcritic.backends.whitebox import WhiteBox

if TYPE_CHECKING:
    import torch
from lmcritic.requests import Capability


def white_box(model: Backend) -> WhiteBox | None:
    """The model's gradient access when it declares GRADIENTS (a black box: None)."""
    return model.white_box() if model.supports(Capability.GRADIENTS) else None


@dataclass(frozen=True)
class WordGradients:
    """Per original word: gradient norm (importance) and mean embedding gradient (for :class:`Estimator`)."""

    norms: list[float]
    vectors: list[Any]  # torch vectors, None where the word has no token


def classifier_importance(wb: WhiteBox, state: State, label_index: int) -> WordGradients:
    """Per-word gradients of log p(label) for a sequence classifier."""
    import torch

    enc = wb.tokenize(state.text)
    inputs = {k: torch.tensor([v], device=wb.device) for k, v in enc.model_inputs.items()}
    emb = wb.embedding_layer()(torch.tensor([enc.ids], device=wb.device)).detach().requires_grad_(True)
    with torch.enable_grad():
        logits = wb.forward(emb, logits_to_keep=None, **inputs)[0]
        torch.log_softmax(logits.float(), -1)[label_index].backward()
    return _per_word(_current_spans(state), enc.offsets, emb.grad[0], shift=0)


def prompted_importance(wb: WhiteBox, state: State, prompt: str, text_at: int, words: Sequence[str],
                        truth: int) -> WordGradients:
    """Per-word gradients of LL(correct) − LL(best rival) for a prompted causal LM."""
    import torch

    from lmcritic.requests import LoglikelihoodRequest

    pairs = wb.encode_pairs([LoglikelihoodRequest(prompt, w) for w in words])
    ctx = list(pairs[0].context)
    enc = wb.tokenize(prompt.rstrip(), special_tokens=False)
    offsets = enc.offsets if list(enc.ids) == ctx else ((0, 0),) * len(ctx)
    table = wb.embedding_layer()
    ctx_emb = table(torch.tensor(ctx, device=wb.device)).detach().requires_grad_(True)
    with torch.enable_grad():
        lls = torch.stack([_cont_ll(wb, table, ctx_emb, p.continuation) for p in pairs])
        rival = max((i for i in range(len(words)) if i != truth), key=lambda i: float(lls[i].detach()))
        (lls[truth] - lls[rival]).backward()
    return _per_word(_current_spans(state), offsets, ctx_emb.grad, shift=text_at)


def _cont_ll(wb: WhiteBox, table: torch.nn.Module, ctx_emb: torch.Tensor, cont: Sequence[int]) -> Any:
    import torch

    ids = torch.tensor(list(cont), device=wb.device)
    emb = torch.cat([ctx_emb, table(ids[:-1])]) if len(cont) > 1 else ctx_emb
    logits = wb.forward(emb[None])[0, -len(cont):].float()
    return torch.log_softmax(logits, -1).gather(1, ids[:, None]).sum()


def _current_spans(state: State) -> list[tuple[int, int]]:
    """Char spans of each ORIGINAL word in the CURRENT text (substitutions shift later words)."""
    spans, shift = [], 0
    subs = {i: w for i, w, _ in state.subs}
    for i, tok in enumerate(state.tokens):
        new = subs.get(i, tok.text)
        spans.append((tok.start + shift, tok.start + shift + len(new)))
        shift += len(new) - len(tok.text)
    return spans


def _per_word(spans: Sequence[tuple[int, int]], offsets: Sequence[Sequence[int]], grad: torch.Tensor,
              shift: int) -> WordGradients:
    norms, vectors = grad.norm(dim=-1).tolist(), []
    out = []
    for start, end in spans:
        rows = [k for k, (a, b) in enumerate(offsets) if b > a and a - shift < end and b - shift > start]
        out.append(max(norms[k] for k in rows) if rows else 0.0)
        vectors.append(grad[rows].mean(0).detach() if rows else None)
    return WordGradients(out, vectors)


class Estimator:
    """First-order change of the objective when word ``i`` becomes ``new``: ḡᵢ · (Σ E[new pieces] − Σ E[old
    pieces]), with ḡᵢ the word's mean embedding gradient. Negative = towards the attack's goal (the objective
    is the correct answer's margin). Uses the original text's gradient throughout (no extra pass)."""

    def __init__(self, wb: WhiteBox, grads: WordGradients) -> None:
        self.wb, self.grads = wb, grads
        self.table = wb.embedding_matrix()

    def __call__(self, state: State, index: int, words: Sequence[str]) -> list[float]:
        g = self.grads.vectors[index] if index < len(self.grads.vectors) else None
        if g is None or not words:
            return [0.0] * len(words)
        lead = " " if state.tokens[index].start > 0 and state.original[state.tokens[index].start - 1] == " " else ""
        old = self._bag(lead + state.tokens[index].text)
        return [float(g @ (self._bag(lead + w) - old)) for w in words]

    def _bag(self, word: str) -> Any:
        ids = list(self.wb.tokenize(word, special_tokens=False).ids)
        return self.table[ids].sum(0) if ids else self.table[0] * 0


def label_index(model: Backend, victim: Any, example: Example) -> int:
    return list(victim.answers(model, example)).index(example.label)
