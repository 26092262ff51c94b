"""Per-token log-probs of whole texts by a strided sliding window (lm-eval's rolling windows when stride == window).

With ``s = [prefix] + tokens``: the first block scores tokens ``[0, W)`` from ``s[0:W]``; every later block
scores the next ``stride`` tokens ``[b, e)`` from the ``W`` tokens before them, ``s[max(0, e - W):e]``. With
stride == W this is exactly lm-eval's ``get_rolling_token_windows`` + ``make_disjoint_window`` (whose last,
partial window also carries a full window of context). Windows of all texts are batched together.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from lmcritic.backends._batching import map_sorted
from lmcritic.backends._hf_tensors import LOGITS_BUDGET, score_tails
from lmcritic.backends._host import TokenizerHost
from lmcritic.backends.base import check_text
from lmcritic.errors import InputError
from lmcritic.requests import RollingRequest, RollingResult

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from lmcritic.backends.hf import HFBackend


@dataclass(frozen=True)
class Window:
    doc: int
    start: int  # first scored token (index into the text's tokens)
    inp: tuple[int, ...]
    targets: tuple[int, ...]


def plan_blocks(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Target blocks ``[b, e)`` over ``n_tokens`` tokens: ``[0, W)`` then steps of ``stride``."""
    blocks, b = [], 0
    e = min(window, n_tokens)
    while b < n_tokens:
        blocks.append((b, e))
        b, e = e, min(e + stride, n_tokens)
    return blocks


def windows_for(doc: int, tokens: Sequence[int], prefix: int, window: int, stride: int) -> list[Window]:
    """The model inputs for one text: block ``[b, e)`` is read from ``s[max(0, e - W):e]``."""
    s = (prefix, *tokens)
    blocks = plan_blocks(len(tokens), window, stride)
    return [Window(doc, b, s[max(0, e - window) : e], tuple(tokens[b:e])) for b, e in blocks]


def rolling_logprobs(be: HFBackend, requests: Sequence[RollingRequest]) -> list[RollingResult]:
    """Every token of every text scored; windows batched across texts, longest first.

    Without ``prefix`` the first token is the first window's context, so it gets no log-prob (None).
    """
    ids, offsets, windows = plan(be, requests)
    top1 = any(r.top1 for r in requests)

    def run(chunk: Sequence[Window]) -> list[tuple[list[float], Any]]:
        rows = [(w.inp, w.targets) for w in chunk]
        return score_tails(be.model, rows, be.pad_id, be.device, greedy=False, top1=top1)

    # longest first, then most targets first: first windows (all targets scored) batch together, so the
    # strided ones that follow keep only ``stride`` positions of logits
    scored = map_sorted(windows, lambda w: len(w.inp) * 10**7 + len(w.targets), be.batch_size, run,
                        cost=lambda w: len(w.targets) * be.vocab, budget=LOGITS_BUDGET)
    return collect(be, requests, ids, offsets, windows, scored)


def plan(be: TokenizerHost, requests: Sequence[RollingRequest]) -> tuple[list[list[int]], list[list[tuple[int, int]]],
                                                                list[Window]]:
    """Each text's token ids and character offsets, and the windows that score them (any engine runs these)."""
    sizes = [_sizes(be, i, r) for i, r in enumerate(requests)]
    ids, offsets = _tokenize(be, [r.text for r in requests])
    windows = [w for d, (r, tok, (W, S)) in enumerate(zip(requests, ids, sizes))
               for w in _doc_windows(be, d, r, tok, W, S)]
    return ids, offsets, windows


def collect(be: TokenizerHost, requests: Sequence[RollingRequest], ids: Sequence[Sequence[int]],
            offsets: Sequence[Sequence[tuple[int, int]]], windows: Sequence[Window],
            scored: Sequence[tuple[list[float], Any]]) -> list[RollingResult]:
    """One result per text from its windows' scores (``scored[i]``: window i's log-probs and top-1 pairs)."""
    per_doc: list[list[Any]] = [[None] * (not r.prefix and len(t) > 0) for r, t in zip(requests, ids)]
    tops: list[list[Any]] = [list(p) for p in per_doc]
    for w, (lps, best) in sorted(zip(windows, scored), key=lambda x: (x[0].doc, x[0].start)):
        per_doc[w.doc].extend(lps)
        tops[w.doc].extend(best or [])
    return [_result(be, r, t, lp, tp, o) for r, t, lp, tp, o in zip(requests, ids, per_doc, tops, offsets)]


def _doc_windows(be: TokenizerHost, doc: int, req: RollingRequest, tokens: Sequence[int], window: int,
                 stride: int) -> list[Window]:
    """With the prefix token, or with the text's own first token as the (unscored) prefix."""
    if req.prefix:
        return windows_for(doc, tokens, be.require_prefix_id(), window, stride)
    if not tokens:
        return []
    return [Window(w.doc, w.start + 1, w.inp, w.targets)
            for w in windows_for(doc, tokens[1:], tokens[0], window, stride)]


def _result(be: TokenizerHost, req: RollingRequest, ids: Sequence[int], lps: list[Any], tops: list[Any],
            offsets: Sequence[tuple[int, int]]) -> RollingResult:
    convert = be.tokenizer.convert_ids_to_tokens
    top1 = tuple(None if t is None else (str(convert(int(t[0]))), float(t[1])) for t in tops) if req.top1 else None
    return RollingResult(tuple(ids), tuple(str(x) for x in convert(list(ids))), tuple(lps), tuple(offsets), top1)


def _sizes(be: TokenizerHost, index: int, req: RollingRequest) -> tuple[int, int]:
    """(window, stride) after defaults, refusing sizes the model cannot take."""
    check_text(req.text, f"request {index} text")
    window = be.max_length if req.window is None else req.window
    stride = window if req.stride is None else req.stride
    if not 1 <= window <= be.max_length:
        raise InputError(f"request {index} window {window} is outside 1..{be.max_length} (the model's max_length)",
                         "pick a smaller window or leave it unset")
    if not 1 <= stride <= window:
        raise InputError(f"request {index} stride {stride} is outside 1..{window} (the window)",
                         "use 0 < stride <= window")
    return window, stride


def _tokenize(be: TokenizerHost, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids exactly as lm-eval's ``tok_encode`` makes them, with character offsets."""
    if not texts:
        return [], []
    tok = be.tokenizer
    if getattr(tok, "is_fast", False):
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return enc["input_ids"], [[(int(a), int(b)) for a, b in o] for o in enc["offset_mapping"]]
    ids = tok(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return ids, [_offsets_by_decoding(tok, t, i) for t, i in zip(texts, ids)]


def _offsets_by_decoding(tok: PreTrainedTokenizerBase, text: str, ids: Sequence[int]) -> list[tuple[int, int]]:
    """Best-effort spans for slow tokenizers: find each decoded piece in the text, moving forward."""
    out, cursor = [], 0
    for i in ids:
        piece = str(tok.decode([i])).strip()
        found = text.find(piece, cursor) if piece else -1
        start = found if found >= 0 else cursor
        end = start + len(piece) if found >= 0 else cursor
        out.append((start, end))
        cursor = end
    return out
