"""Terminal rendering of explanations (rich): coloured words, top words, faithfulness and pair differences."""
from __future__ import annotations

from typing import Any, Sequence


def _coloured(ex: Any) -> Any:
    from rich.text import Text

    text, last = Text(), 0
    scale = max((abs(s) for s in ex.word_scores), default=0.0) or 1.0
    for (a, b), s in zip(ex.word_offsets, ex.word_scores):
        text.append(ex.target.text[last:a])
        level = min(1.0, abs(s) / scale)
        style = (f"on {'red' if s >= 0 else 'blue'}" if level > 0.5 else
                 f"{'red' if s >= 0 else 'blue'}" if level > 0.15 else "")
        text.append(ex.target.text[a:b], style=style)
        last = b
    text.append(ex.target.text[last:])
    return text


def print_side(console: Any, side: Any, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold]{title}[/bold] target {escape(side.target.label())} ({side.target.kind}); comp/suff: "
                  "ERASER AOPC (comp high and suff low = faithful)", highlight=False)
    faith = {f.method: f for f in side.faithfulness}
    table = Table(show_header=True)
    for col in ("method", "f(x)", "IG steps/delta", "comp", "random", "suff", "spurious", "s"):
        table.add_column(col, overflow="fold")
    for ex in side.explanations:
        f = faith.get(ex.method)
        ig = f"{ex.n_steps} / {ex.delta:+.3g}" if ex.delta is not None else ""
        table.add_row(ex.method, _num(ex.score), ig, _num(f and f.comprehensiveness),
                      _num(f and f.random_comprehensiveness),
                      _num(f and f.sufficiency), _num(side.spurious.get(ex.method, {}).get("share")),
                      _num(ex.timings.get("total_s")))
    console.print(table)
    for ex in side.explanations:
        top = ", ".join(f"{w} {s:+.2f}" for w, s in ex.top_words(4))
        console.print(f"  {ex.method} top words: {escape(top)}", highlight=False)
        console.print("  ", _coloured(ex))
    for name, why in side.skipped.items():
        console.print(f"  [dim]skipped {name}: {why}[/dim]")
    if side.agreement:
        console.print("  agreement: " + ", ".join(f"{k} {v:.3g}" for k, v in side.agreement.items()))


def print_explanations(done: Sequence[Any]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    for ce in done:
        console.rule(escape(f"{ce.probe_key} / {ce.case_id}"))
        print_side(console, ce.original, "original" if ce.variant else "case")
        if ce.variant is not None:
            print_side(console, ce.variant, "variant")
            for method, d in (ce.difference or {}).items():
                moved = "; ".join(f"{c['original']!r}→{c['variant']!r} ({c['score_original']:+.2f}→"
                                  f"{c['score_variant']:+.2f})" for c in d["changed"][:6])
                console.print(escape(f"  {method}: f {_num(d['score_original'])} → {_num(d['score_variant'])}; "
                                     f"changed words {moved or 'none'}"), highlight=False)


def _num(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) else ""
