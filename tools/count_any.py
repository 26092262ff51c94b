"""Count function parameters typed ``Any`` in src/lmcritic (issue 19's measure), by category.

A parameter counts when ``Any`` appears anywhere in its annotation (``Any``, ``dict[str, Any]``,
``Sequence[Any]``, ``Any | None`` ...). ``*args``/``**kwargs`` typed ``Any`` are counted apart: they forward
keyword options to a callee that checks them. ``self``/``cls`` have no annotation and never count.

Usage: python tools/count_any.py [--list] [--by-file] [ROOT]
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path


def _mentions_any(node: ast.expr | None) -> bool:
    if node is None:
        return False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == "Any":
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == "Any":
            return True
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):  # a quoted annotation
            try:
                if _mentions_any(ast.parse(sub.value, mode="eval").body):
                    return True
            except SyntaxError:
                pass
    return False


def _bare_any(node: ast.expr | None) -> bool:
    """The annotation is ``Any`` itself (or ``Any | None``), not a container of Any."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        return any(_bare_any(x) for x in sides) and all(_bare_any(x) or _is_none(x) for x in sides)
    return (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute) and node.attr == "Any")


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def any_params(path: Path, bare: bool = False) -> list[tuple[int, str, str, bool]]:
    """(line, function, parameter, is_star) for each parameter whose annotation mentions Any (``bare``: is Any)."""
    test = _bare_any if bare else _mentions_any
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = fn.args
        plain = [*a.posonlyargs, *a.args, *a.kwonlyargs]
        for arg in plain:
            if test(arg.annotation):
                out.append((arg.lineno, fn.name, arg.arg, False))
        for arg in (a.vararg, a.kwarg):
            if arg is not None and test(arg.annotation):
                out.append((arg.lineno, fn.name, arg.arg, True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1] / "src" / "lmcritic"))
    ap.add_argument("--list", action="store_true", help="print every counted parameter")
    ap.add_argument("--by-file", action="store_true", help="counts per file, largest first")
    ap.add_argument("--bare", action="store_true",
                    help="only parameters typed Any itself (or Any | None), not containers such as dict[str, Any]")
    args = ap.parse_args(argv)
    root = Path(args.root)
    per_file: Counter[str] = Counter()
    plain = star = 0
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        for line, fn, name, is_star in any_params(path, bare=args.bare):
            if is_star:
                star += 1
            else:
                plain += 1
                per_file[rel] += 1
            if args.list:
                print(f"{rel}:{line}: {fn}({'**' if is_star else ''}{name})")
    if args.by_file:
        for rel, n in per_file.most_common():
            print(f"{n:4d} {rel}")
    what = "typed Any" if args.bare else "whose type mentions Any"
    print(f"parameters {what}: {plain + star} ({plain} plain, {star} *args/**kwargs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
