"""Gradient word importance for white-box (``GRADIENTS``) Hugging Face backends: one forward+backward pass
instead of one query per word. Importance of a word = L2 norm of d(objective)/d(input embedding), max over
its sub-word tokens (the ranking TextAttack's ``wir_method="gradient"`` uses, with L2 instead of L1).

Objective: classifier heads — log p(correct label); prompted causal LMs — LL(correct) − LL(best rival)
of the answer continuations, both scored in one batch from the same prompt embeddings.

The same pass also yields each word's mean embedding gradient, from which :class:`Estimator` predicts, to
first order (HotFlip, Ebrahimi et al. 2018, generalised to words that re-tokenize into other pieces), how a
candidate replacement moves the objective — so candidates can be ordered before any of them is queried.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lmcritic.attacks.base import Example, State
from lmcritic.backends.base import Backend
from lmcritic.requests import Capability


def white_box(model: Backend) -> Any | None:
    """The underlying HF backend (unwrapping cache wrappers) when it offers GRADIENTS, else None."""
    inner = model
    while hasattr(inner, "inner"):
        inner = inner.inner
    ok = Capability.GRADIENTS in inner.capabilities and all(hasattr(inner, a) for a in ("model", "tokenizer"))
    return inner if ok else None


@dataclass(frozen=True)
class WordGradients:
    """Per original word: gradient norm (importance) and mean embedding gradient (for :class:`Estimator`)."""

    norms: list[float]
    vectors: list[Any]  # torch vectors, None where the word has no token


def classifier_importance(be: Any, state: State, label_index: int) -> WordGradients:
    """Per-word gradients of log p(label) for a sequence classifier."""
    import torch

    enc = be.tokenizer(state.text, return_offsets_mapping=True, truncation=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    enc = {k: v.to(be.device) for k, v in enc.items()}
    emb = be.model.get_input_embeddings()(enc.pop("input_ids")).detach().requires_grad_(True)
    with torch.enable_grad():
        logits = be.model(inputs_embeds=emb, **enc).logits[0]
        torch.log_softmax(logits.float(), -1)[label_index].backward()
    return _per_word(_current_spans(state), offsets, emb.grad[0], shift=0)


def prompted_importance(be: Any, state: State, prompt: str, text_at: int, words: Sequence[str],
                        truth: int) -> WordGradients:
    """Per-word gradients of LL(correct) − LL(best rival) for a prompted causal LM."""
    import torch

    from lmcritic.backends._hf_loglik import encode_pairs
    from lmcritic.requests import LoglikelihoodRequest

    pairs = encode_pairs(be, [LoglikelihoodRequest(prompt, w) for w in words])
    ctx = list(pairs[0].ctx)
    enc = be.tokenizer(prompt.rstrip(), add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"] if list(enc["input_ids"]) == ctx else [(0, 0)] * len(ctx)
    table = be.model.get_input_embeddings()
    ctx_emb = table(torch.tensor(ctx, device=be.device)).detach().requires_grad_(True)
    with torch.enable_grad():
        lls = torch.stack([_cont_ll(be, table, ctx_emb, p.cont) for p in pairs])
        rival = max((i for i in range(len(words)) if i != truth), key=lambda i: float(lls[i].detach()))
        (lls[truth] - lls[rival]).backward()
    return _per_word(_current_spans(state), offsets, ctx_emb.grad, shift=text_at)


def _cont_ll(be: Any, table: Any, ctx_emb: Any, cont: Sequence[int]) -> Any:
    import torch

    ids = torch.tensor(list(cont), device=be.device)
    emb = torch.cat([ctx_emb, table(ids[:-1])]) if len(cont) > 1 else ctx_emb
    logits = be.model(inputs_embeds=emb[None]).logits[0, -len(cont):].float()
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


def _per_word(spans: Sequence[tuple[int, int]], offsets: Sequence[Sequence[int]], grad: Any,
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

    def __init__(self, be: Any, grads: WordGradients) -> None:
        self.be, self.grads = be, grads
        self.table = be.model.get_input_embeddings().weight.detach()

    def __call__(self, state: State, index: int, words: Sequence[str]) -> list[float]:
        g = self.grads.vectors[index] if index < len(self.grads.vectors) else None
        if g is None or not words:
            return [0.0] * len(words)
        lead = " " if state.tokens[index].start > 0 and state.original[state.tokens[index].start - 1] == " " else ""
        old = self._bag(lead + state.tokens[index].text)
        return [float(g @ (self._bag(lead + w) - old)) for w in words]

    def _bag(self, word: str) -> Any:
        ids = self.be.tokenizer(word, add_special_tokens=False)["input_ids"]
        return self.table[ids].sum(0) if ids else self.table[0] * 0


def label_index(model: Backend, victim: Any, example: Example) -> int:
    return list(victim.answers(model, example)).index(example.label)
