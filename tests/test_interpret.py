"""Interpretability on the tiny offline models: attributions explain exactly the probe's score, IG is complete,
black-box occlusion batches, ERASER faithfulness finds a planted feature, heatmaps escape, runs store explanations."""
from __future__ import annotations

import math

import pytest

from lmcritic.errors import InputError
from lmcritic.interpret import ATTRIBUTORS, ERASER, Target, agreement, attributor, spurious_share
from lmcritic.interpret._words import pool_to_words, remove_words, word_spans
from lmcritic.requests import ClassifyRequest, LoglikelihoodRequest

TEXT = "a gorgeous, witty, seductive movie about women."
CTX = f"Review: {TEXT}\nSentiment:"
SPAN = (8, 8 + len(TEXT))


def _target(**kw) -> Target:
    return Target(CTX, " positive", " negative", span=SPAN, **kw)


def test_words_pool_and_remove() -> None:
    text = "Un-believable, really!"
    spans = word_spans(text)
    assert [text[a:b] for a, b in spans] == ["Un", "-", "believable", ",", "really", "!"]
    # a token covering "believable," splits its score by overlap: 10 chars to the word, 1 to the comma
    pooled = pool_to_words([(3, 14), (0, 2)], [11.0, 1.0], spans)
    assert pooled == pytest.approx([1.0, 0.0, 10.0, 1.0, 0.0, 0.0])
    assert remove_words("a b c d", word_spans("a b c d"), [1, 2]) == "a d"


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients"])
def test_gradient_target_equals_backend_loglikelihood(tiny_causal, method) -> None:
    res = tiny_causal.loglikelihood([LoglikelihoodRequest(CTX, " positive"), LoglikelihoodRequest(CTX, " negative")])
    ex = attributor(method)(tiny_causal, _target())
    assert ex.score == pytest.approx(res[0].logprob - res[1].logprob, abs=1e-4)
    assert len(ex.tokens) == len(ex.scores) == len(ex.offsets)
    assert [w for w in ex.words] == [CTX[a:b] for a, b in word_spans(CTX)]
    spans = word_spans(CTX)
    on_words = [s for s, (a, b) in zip(ex.scores, ex.offsets) if any(a < y and x < b for x, y in spans)]
    assert sum(ex.word_scores) == pytest.approx(sum(on_words), abs=1e-5)  # pooling keeps the words' mass


def test_integrated_gradients_complete_and_adaptive(tiny_causal) -> None:
    ig = attributor("integrated_gradients", n_steps=None, tol=0.02)(tiny_causal, _target())
    gap = ig.score - ig.baseline_score
    # completeness: attributions add up to f(x) - f(baseline), up to the reported delta
    assert sum(ig.scores) - gap == pytest.approx(ig.delta, abs=1e-4)
    assert ig.details["converged"] and abs(ig.delta) <= max(0.02 * abs(gap), 1e-3)
    assert ig.n_steps == ig.details["tries"][-1]["n_steps"]
    # template tokens are held at the baseline, so only the review gets attribution
    outside = [s for s, (a, b) in zip(ig.scores, ig.offsets) if not (a >= SPAN[0] and b <= SPAN[1])]
    assert all(abs(s) < 1e-6 for s in outside)
    fixed = attributor("integrated_gradients", n_steps=4)(tiny_causal, _target())
    assert fixed.n_steps == 4 and len(fixed.details["tries"]) == 1


def test_integrated_gradients_fixed_steps_equal_captum(tiny_causal) -> None:
    from captum.attr import LayerIntegratedGradients

    from lmcritic.interpret._whitebox import prepare

    prep = prepare(tiny_causal, _target())
    for method in ("gausslegendre", "riemann_trapezoid"):
        ours = attributor("integrated_gradients", n_steps=6, method=method)(tiny_causal, _target())
        with prep.wb.gradients():
            attr, delta = LayerIntegratedGradients(prep.forward_ids, prep.layer).attribute(
                prep.ids, baselines=prep.baseline, n_steps=6, method=method, return_convergence_delta=True)
        assert ours.scores == pytest.approx(attr.sum(-1)[0].tolist(), abs=1e-5)
        assert ours.delta == pytest.approx(float(delta[0]), abs=1e-4)


def test_adaptive_ig_reuses_points_and_respects_its_ceiling(tiny_causal) -> None:
    cfg = {"tol": 1e-9, "abs_tol": 1e-12, "first_steps": 4, "refine": 3, "max_steps": 12}
    ig = attributor("integrated_gradients", **cfg)(tiny_causal, _target())
    assert [t["n_steps"] for t in ig.details["tries"]] == [4, 7, 10, 12]  # split 3 at a time, capped at 12
    assert ig.details["evaluations"] == 13 and not ig.details["converged"]  # every point computed once
    assert sum(ig.scores) - (ig.score - ig.baseline_score) == pytest.approx(ig.delta, abs=1e-4)
    assert all(abs(t["delta"]) <= t["abs_error"] + 1e-9 for t in ig.details["tries"])  # delta: the signed sum


def test_adaptive_ig_independent_of_its_batch(tiny_causal) -> None:
    cfg = {"tol": 1e-9, "abs_tol": 1e-12, "first_steps": 4, "refine": 3, "max_steps": 12}
    runs = [attributor("integrated_gradients", token_budget=b, **cfg)(tiny_causal, _target()) for b in (1, 7, 4096)]
    for other in runs[1:]:  # one point per forward, a few, all at once: the same points and the same numbers
        for mine, first in zip(other.details["tries"], runs[0].details["tries"], strict=True):
            assert mine == pytest.approx(first, abs=1e-5)
        assert other.scores == pytest.approx(runs[0].scores, abs=1e-5)


def test_foil_flips_sign(tiny_causal) -> None:
    a = attributor("grad_x_input")(tiny_causal, _target())
    b = attributor("grad_x_input")(tiny_causal, Target(CTX, " negative", " positive", span=SPAN))
    assert a.scores == pytest.approx([-s for s in b.scores], abs=1e-5)


def test_classifier_label(tiny_classifier) -> None:
    prob = tiny_classifier.classify([ClassifyRequest(TEXT)])[0]
    t = Target(TEXT, "positive", kind="label")
    ex = attributor("grad_x_input")(tiny_classifier, t)
    assert ex.score == pytest.approx(math.log(prob.probs[prob.labels.index("positive")]), abs=1e-4)
    assert ex.tokens[0] == "[CLS]" and ex.scores[0] == pytest.approx(ex.scores[0])
    ig = attributor("integrated_gradients", n_steps=32)(tiny_classifier, t)
    assert sum(ig.scores) - (ig.score - ig.baseline_score) == pytest.approx(ig.delta, abs=1e-4)
    with pytest.raises(Exception, match="causal"):
        attributor("grad_x_input")(tiny_classifier, _target())


def test_attention_and_rollout(tiny_causal) -> None:
    before = tiny_causal.model.config._attn_implementation
    for name in ("attention", "attention_rollout"):
        ex = attributor(name)(tiny_causal, _target())
        n = len(ex.tokens)
        assert len(ex.attention) == n and all(len(r) == n for r in ex.attention)
        assert all(sum(r) == pytest.approx(1.0, abs=1e-3) for r in ex.attention)  # rows are distributions
        assert all(s >= 0 for s in ex.scores) and sum(ex.scores) == pytest.approx(1.0, abs=1e-3)
        # causal: a token never attends to later ones
        assert all(ex.attention[i][j] < 1e-6 for i in range(n) for j in range(i + 1, n))
    assert tiny_causal.model.config._attn_implementation == before


def test_occlusion_is_black_box_and_batched(tiny_causal) -> None:
    from lmcritic.store.cache import CachedBackend

    cached = CachedBackend(tiny_causal, None)
    ex = attributor("leave_one_out")(cached, _target())
    assert cached.stats.misses <= 2 * (1 + len(word_spans(TEXT)))  # one list: full text + one per span word
    assert ex.details["n_queries"] == 1 + len(word_spans(TEXT))
    i = ex.words.index("witty")
    edited = remove_words(CTX, ex.word_offsets, [i])
    r = tiny_causal.loglikelihood([LoglikelihoodRequest(edited, " positive"),
                                   LoglikelihoodRequest(edited, " negative")])
    assert ex.word_scores[i] == pytest.approx(ex.score - (r[0].logprob - r[1].logprob), abs=1e-4)
    assert ex.word_scores[ex.words.index("Review")] == 0.0  # outside the span: never removed


def test_white_box_goes_through_the_cache_and_black_boxes_have_none(tiny_causal) -> None:
    """Gradient access is Backend.white_box(), handed through the cache wrapper; its forward scores exactly what
    loglikelihood scores; a black box declares no GRADIENTS and white-box methods say so before any work."""
    import torch

    from lmcritic.backends.whitebox import WhiteBox
    from lmcritic.errors import CapabilityError
    from lmcritic.store.cache import CachedBackend

    cached = CachedBackend(tiny_causal, None)
    wb = cached.white_box()
    assert isinstance(wb, WhiteBox) and wb.model_kind == "causal" and wb.embedding_matrix().shape[0] > 10
    enc = wb.tokenize(CTX, special_tokens=False)
    assert len(enc.ids) == len(enc.offsets) == len(wb.token_strings(enc.ids)) > 3
    req = LoglikelihoodRequest(CTX, " positive")
    pair = wb.encode_pairs([req])[0]
    ids = torch.tensor([[*pair.context, *pair.continuation]])
    with wb.gradients():
        emb = wb.embedding_layer()(ids).detach().requires_grad_(True)
        logits = wb.forward(emb, logits_to_keep=len(pair.continuation) + 1)[0, :-1]
        ll = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor([pair.continuation]).T).sum()
        ll.backward()
    assert float(ll.detach()) == pytest.approx(cached.loglikelihood([req])[0].logprob, abs=1e-4)
    assert emb.grad is not None
    black = _planted()
    with pytest.raises(CapabilityError):
        black.white_box()
    assert "black box" in attributor("grad_x_input").not_applicable(black)


def _planted():
    """A black-box classifier that only looks at the word 'great' (and a planted trigger 'cf')."""
    from lmcritic.backends.python import PythonBackend

    def fn(text: str) -> dict:
        words = text.lower().split()
        p = 0.9 if "great" in words else 0.2
        p = 0.99 if "cf" in words else p
        return {"positive": p, "negative": 1 - p}

    return PythonBackend(fn, task="classify", labels=("negative", "positive"))


def test_faithfulness_finds_planted_feature() -> None:
    model = _planted()
    t = Target("the plot was thin but the acting was great overall", "positive", kind="label")
    ex = attributor("occlusion")(model, t)
    assert ex.top_words(1)[0][0] == "great"
    f = ERASER(n_random=5)(model, ex)
    assert f.units == "probability" and f.comprehensiveness > f.random_comprehensiveness + 0.2
    assert f.sufficiency < f.random_sufficiency
    assert attributor("grad_x_input").not_applicable(model, t) is not None
    trig = Target("cf the plot was thin , really", "positive", kind="label")
    share = spurious_share(attributor("occlusion")(model, trig), triggers=["cf"])
    assert share["trigger"] > 0.9 and share["words"]["trigger"] == ["cf"] and share["words"]["punctuation"] == [","]


def test_identity_terms_counted(tiny_causal) -> None:
    ex = attributor("grad_x_input")(tiny_causal, _target())
    share = spurious_share(ex)
    assert "women" in share["words"]["identity"] and 0 <= share["share"] <= 1


def test_agreement_matches_scipy() -> None:
    from scipy.stats import spearmanr

    from lmcritic.interpret.faithfulness import rank_correlation, top_k_overlap

    a, b = [0.1, 0.5, 0.5, -2.0, 3.0], [1.0, 0.0, 2.0, -1.0, 4.0]
    assert rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert top_k_overlap(a, b, 2) == 0.5
    assert math.isnan(rank_correlation([1, 1, 1], [1, 2, 3]))


def test_agreement_between_methods(tiny_causal) -> None:
    a = attributor("grad_x_input")(tiny_causal, _target())
    out = agreement(a, a)
    assert out["spearman"] == pytest.approx(1.0) and out["top3_overlap"] == 1.0


def test_html_is_escaped_and_self_contained() -> None:
    from lmcritic.interpret.html import attention_heatmap_html, token_heatmap_html

    html = token_heatmap_html(["<script>alert(1)</script>", "ok"], [1.0, -0.5], title="<b>t</b>")
    assert "<script" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert "rgba(220,38,38,1.000)" in html and "rgba(37,99,235,0.500)" in html
    grid = attention_heatmap_html(["<a>", "b"], [[1.0, 0.0], [0.5, 0.5]])
    assert "<a>" not in grid and grid.count("<td") == 4 and "http" not in grid + html
    with pytest.raises(InputError, match="1 tokens but 2 weights"):
        token_heatmap_html(["a"], [1.0, 2.0])


def test_registry_names() -> None:
    assert {"grad_x_input", "integrated_gradients", "attention", "attention_rollout", "occlusion",
            "leave_one_out"} <= set(ATTRIBUTORS.names())
    with pytest.raises(Exception, match="did you mean"):
        attributor("integrated_gradient")
