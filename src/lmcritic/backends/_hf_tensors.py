"""Tensor plumbing shared by the HF backend's methods: padding, tail-only forwards, token scores, fingerprint.

Scoring pads on the *left* so every row's scored tokens sit at the end of the batch; the model then only
projects those last positions onto the vocabulary (``logits_to_keep``), which for a 49k vocabulary is a
large part of the work and most of the memory.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from typing import TYPE_CHECKING, Any, Sequence

import torch

from lmcritic.errors import ModelLoadError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

LOGITS_BUDGET = 1 << 29  # float32 logits per forward (2 GiB); longer batches are split, never truncated
SAMPLE = 2048  # elements per tensor hashed into the fingerprint
CHUNK_FLOATS = 1 << 25  # logits per output-layer slice (128 MiB): big enough for fast matmuls, small for the cache


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int,
             device: torch.device | str) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """(ids, attention mask or None when nothing is padded, position ids counted from each row's first token)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    padded = bool((mask == 0).any())
    return ids.to(device), (mask.to(device) if padded else None), pos.to(device)


def right_pad(seqs: Sequence[Sequence[int]], pad_id: int,
              device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) with each row's tokens first."""
    width = max(1, max(len(s) for s in seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)


_FORWARD_PARAMS: dict[Any, frozenset[str]] = {}  # model class -> its forward's parameter names


def _forward_params(cls: Any) -> frozenset[str]:
    if cls not in _FORWARD_PARAMS:
        try:
            _FORWARD_PARAMS[cls] = frozenset(inspect.signature(cls.forward).parameters)
        except (TypeError, ValueError):
            _FORWARD_PARAMS[cls] = frozenset()
    return _FORWARD_PARAMS[cls]


def accepts(model: torch.nn.Module, name: str) -> bool:
    """Whether the model's ``forward`` takes keyword ``name`` (``logits_to_keep``, ``position_ids``)."""
    return name in _forward_params(type(model))


def cache_kwarg(model: PreTrainedModel) -> str | None:
    """The keyword a model's ``forward`` takes a KV cache under: ``cache`` (transformers >= 5.24), else the older
    ``past_key_values``; None when it takes neither (then shared-context reuse is off)."""
    return next((n for n in ("cache", "past_key_values") if accepts(model, n)), None)


def returned_cache(out: Any) -> Any:
    """The KV cache a forward returned, under either name transformers has used for it."""
    return out["cache"] if "cache" in out else out.get("past_key_values")  # the old name warns when read


def forward_tail(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor,
                 keep: int) -> torch.Tensor:
    """Logits of the last ``keep`` positions only, [batch, keep, vocab]."""
    kwargs = _forward_kwargs(model, ids, mask, pos)
    if accepts(model, "logits_to_keep"):
        return model(**kwargs, logits_to_keep=keep).logits
    return model(**kwargs).logits[:, -keep:]


def token_scores(logits: torch.Tensor, targets: torch.Tensor, greedy: bool = True,
                 out: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
    """log P(target) per position and whether each target is the argmax.

    ``log_softmax`` then gather, exactly as lm-eval does: CPU ``log_softmax`` carries a small systematic bias
    (~1e-5 per token at 49k vocab), so a more exact ``x - logsumexp(x)`` would drift from lm-eval's numbers
    by ~1e-4 over a few tokens and by far more over a rolling document (and ``logsumexp`` is slower on CPU).
    ``out``: a reused buffer for the log-probs (see :func:`tail_scores`).
    """
    lp = torch.log_softmax(logits.float(), dim=-1, out=out)
    picked = lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked, (lp.argmax(-1) == targets if greedy else None)


def top1_scores(logits: torch.Tensor, targets: torch.Tensor,
                out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log P(target), the argmax token and its log-prob per position (same ``log_softmax`` as above)."""
    lp = torch.log_softmax(logits.float(), dim=-1, out=out)
    best, best_id = lp.max(-1)
    return lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), best_id, best


def padded_targets(rows: Sequence[Sequence[int]], width: int, *, right_align: bool) -> torch.Tensor:
    """Targets laid out like the kept logits: right-aligned for tail scoring, left-aligned after a KV prefix."""
    out = torch.zeros((len(rows), width), dtype=torch.long)
    for row, tgt in enumerate(rows):
        if tgt:
            if right_align:
                out[row, width - len(tgt) :] = torch.tensor(tgt, dtype=torch.long)
            else:
                out[row, : len(tgt)] = torch.tensor(tgt, dtype=torch.long)
    return out


def score_tails(model: PreTrainedModel, rows: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int,
                device: torch.device | str,
                greedy: bool = True, top1: bool = False) -> list[tuple[list[float], Any]]:
    """For rows of (input ids, targets), the targets' log-probs, each predicted at the input's last positions,
    with per-target greedy flags (``greedy``) or (argmax id, its log-prob) pairs (``top1``), else None.

    Models without ``position_ids`` cannot be left-padded safely, so their rows of unequal length go one by one.
    """
    lengths = {len(inp) for inp, _ in rows}
    if len(lengths) > 1 and not accepts(model, "position_ids"):
        return [score_tails(model, [row], pad_id, device, greedy, top1)[0] for row in rows]
    ids, mask, pos = left_pad([inp for inp, _ in rows], pad_id, device)
    keep = max(len(tgt) for _, tgt in rows)
    targets = padded_targets([tgt for _, tgt in rows], keep, right_align=True).to(device)
    lp, extra = tail_scores(model, ids, mask, pos, keep, targets, greedy, top1)
    out = []
    for row, (_, tgt) in enumerate(rows):
        k = len(tgt)
        tail = extra[row][keep - k :] if extra[row] is not None else None
        out.append((lp[row, keep - k :].tolist(), tail))
    return out


def tail_scores(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor, keep: int,
                targets: torch.Tensor,
                greedy: bool, top1: bool) -> tuple[torch.Tensor, list[Any]]:
    """Scores of the last ``keep`` positions. Where the logits are just the output layer applied to the last
    hidden states, that layer and ``log_softmax`` run over slices of positions, so a window's [keep, vocab]
    logits never exist at once (they dwarf the cache; ~13% faster on rolling perplexity, same numbers)."""
    hidden = _last_hidden(model, ids, mask, pos, keep) if output_layer_is_separable(model) else None
    if hidden is None:
        return _scores(forward_tail(model, ids, mask, pos, keep), None, targets, greedy, top1)
    head = model.get_output_embeddings()
    step = max(1, CHUNK_FLOATS // max(1, hidden.shape[0] * vocab_size(model)))
    slices = _HeadSlices(head, hidden.shape[0], min(step, keep))
    parts = [_scores(*slices(hidden[:, a : a + step]), targets[:, a : a + step], greedy, top1)
             for a in range(0, keep, step)]
    lp = torch.cat([p[0] for p in parts], dim=1)
    extra: list[Any] = [sum((p[1][row] for p in parts), []) if parts[0][1][row] is not None else None
                        for row in range(hidden.shape[0])]
    return lp, extra


class _HeadSlices:
    """The output layer over slices of positions, writing into two buffers reused across slices: a fresh
    64 MiB logits tensor (and another for its log-probs) per slice costs page faults that made the output layer
    ~25% slower on CPU. Plain fp32 ``nn.Linear`` heads without autograd only; any other head is called as is."""

    def __init__(self, head: Any, rows: int, step: int) -> None:
        self.head = head
        weight: Any = getattr(head, "weight", None)
        self.fast = (type(head) is torch.nn.Linear and weight is not None and weight.dtype == torch.float32
                     and not torch.is_grad_enabled())  # out= buffers cannot carry autograd
        size = rows * step * (weight.shape[0] if self.fast else 0)
        self.logits: Any = torch.empty(size, device=weight.device) if self.fast else None
        self.logprobs: Any = torch.empty(size, device=weight.device) if self.fast else None

    def __call__(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits of ``hidden`` [rows, n, vocab], a buffer of the same shape for their log-probs, or None)."""
        if not self.fast:
            return self.head(hidden), None
        rows, width = hidden.shape[0] * hidden.shape[1], self.head.weight.shape[0]
        flat = self.logits[: rows * width].view(rows, width)
        torch.mm(hidden.reshape(rows, -1), self.head.weight.t(), out=flat)  # 2-D: matmul's out= path is slower
        if self.head.bias is not None:
            flat.add_(self.head.bias)
        shape = (*hidden.shape[:-1], width)
        return flat.view(shape), self.logprobs[: rows * width].view(shape)


def _scores(logits: torch.Tensor, lp_buffer: torch.Tensor | None, targets: torch.Tensor, greedy: bool,
            top1: bool) -> tuple[torch.Tensor, list]:
    """(log P(target), per-row lists of greedy flags or (argmax id, log-prob) pairs, or Nones)."""
    if top1:
        lp, best_id, best = top1_scores(logits, targets, lp_buffer)
        return lp, [list(zip(i.tolist(), b.tolist())) for i, b in zip(best_id, best)]
    lp, top = token_scores(logits, targets, greedy, lp_buffer)
    return lp, top.tolist() if top is not None else [None] * logits.shape[0]


def _last_hidden(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor | None, pos: torch.Tensor,
                 keep: int) -> torch.Tensor:
    return model.base_model(**_forward_kwargs(model.base_model, ids, mask, pos)).last_hidden_state[:, -keep:]


def _forward_kwargs(module: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor | None,
                    pos: torch.Tensor) -> dict[str, Any]:
    """Inputs of a cache-free forward; position ids only where ``module`` takes them."""
    kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    if accepts(module, "position_ids"):
        kwargs["position_ids"] = pos
    return kwargs


def output_layer_is_separable(model: PreTrainedModel) -> bool:
    """Whether logits == output_layer(base_model(...).last_hidden_state), checked once per model on a tiny
    input (models with logit soft-capping or scaling fail the check and keep the plain path)."""
    cached = getattr(model, "_lmcritic_separable", None)
    if cached is None:
        cached = _check_separable(model)
        try:
            object.__setattr__(model, "_lmcritic_separable", cached)
        except (AttributeError, TypeError):
            return cached
    return cached


def _check_separable(model: PreTrainedModel) -> bool:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    body = getattr(model, "base_model", None)
    if head is None or body is None or body is model:
        return False
    ids = torch.arange(1, 5, device=next(model.parameters()).device).unsqueeze(0)
    pos = torch.arange(4, device=ids.device).unsqueeze(0)
    try:
        with torch.inference_mode():
            full = forward_tail(model, ids, None, pos, 4)
            split = head(_last_hidden(model, ids, None, pos, 4))
    except Exception:  # any architecture quirk: use the plain path
        return False
    return full.shape == split.shape and bool(torch.allclose(full.float(), split.float(), atol=1e-5, rtol=1e-5))


def vocab_size(model: PreTrainedModel) -> int:
    """Width of the logits, for memory budgeting only (quantized heads hide their weight behind a method)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if isinstance(weight, torch.Tensor):
        return int(weight.shape[0])
    width = getattr(head, "out_features", None) or getattr(getattr(model, "config", None), "vocab_size", None)
    return int(width) if isinstance(width, int) and width > 0 else 50_000


def fingerprint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, sample: int | None = SAMPLE) -> str:
    """sha256 over config, parameter names/shapes/dtypes plus a strided sample of ``sample`` elements of every
    tensor, and vocab. ``sample=None`` hashes every byte of every parameter and buffer instead (for models held
    in memory, which users edit in place): 1.9 s instead of 0.75 s for SmolLM2-135M's 538 MB on a 2-core CPU."""
    h = hashlib.sha256(type(model).__name__.encode())
    config = {k: v for k, v in model.config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    # module classes too: a dynamically quantized copy keeps its int8 weights outside named_parameters
    h.update("|".join(sorted({type(m).__qualname__ for m in model.modules()})).encode())
    tensors = model.named_parameters() if sample else [*model.named_parameters(), *model.named_buffers()]
    for name, param in tensors:
        flat = param.detach().reshape(-1)
        h.update(f"{name}|{tuple(param.shape)}|{param.dtype}".encode())
        if param.device.type == "meta":  # offloaded to disk by accelerate: read the values from there
            flat = _offloaded(model, name).detach().reshape(-1)
        if sample:
            h.update(flat[:: max(1, flat.numel() // sample)][:sample].float().cpu().numpy().tobytes())
        else:
            h.update(flat.cpu().contiguous().view(torch.uint8).numpy().data)  # the exact bytes, whatever the dtype
    h.update(tokenizer_hash(tokenizer).encode())
    return h.hexdigest()


def _offloaded(model: PreTrainedModel, name: str) -> torch.Tensor:
    """A parameter accelerate keeps on disk, from the offload map of the hook that loads it for forward."""
    for prefix, module in model.named_modules():
        weights = getattr(getattr(module, "_hf_hook", None), "weights_map", None)
        key = name[len(prefix) + 1:] if prefix else name
        if weights is not None and (not prefix or name.startswith(prefix + ".")) and key in weights:
            return torch.as_tensor(weights[key])
    raise ModelLoadError(f"parameter {name} is on the meta device and no offload map holds it",
                         "load the model without device_map, or with a larger max_memory")


def tokenizer_hash(tokenizer: PreTrainedTokenizerBase) -> str:
    """The vocabulary, special tokens and chat template: what changes the ids or the prompts."""
    parts = {"vocab": sorted(tokenizer.get_vocab().items()), "chat_template": getattr(tokenizer, "chat_template", None),
             "special": {k: str(v) for k, v in sorted(getattr(tokenizer, "special_tokens_map", {}).items())}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
