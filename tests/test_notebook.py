"""examples/python_first.ipynb, executed for real (nbclient, an IPython kernel) on the tiny model, offline: it
scans a loaded model object and shows the inline scorecard; that scorecard is then rendered in headless Chromium
under a CSP that allows no script at all, and its screenshot checked."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "python_first.ipynb"
STRICT_CSP = "default-src 'none'; style-src 'unsafe-inline'"  # the report's, minus even its one script


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_causal_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    tmp = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = f"MODEL = {str(tiny_causal_dir)!r}\nN = 16"
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits the environment: keep its store in tmp
        mp.setenv("LMCRITIC_HOME", str(tmp / "home"))
        mp.setenv("OMP_NUM_THREADS", "1")
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}
                                ).execute()
    return nb, tmp


def outputs(nb, marker: str) -> list[dict]:
    """The outputs of the first code cell whose source contains ``marker``."""
    return next(c for c in nb.cells if c.cell_type == "code" and marker in c.source).outputs


def test_notebook_runs_and_shows_the_scorecard(executed) -> None:
    nb, tmp = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    shown = outputs(nb, "results = lmcritic.scan(")[0]["data"]
    assert shown["text/html"].startswith('<div class="lmcritic-inline">') and "Scorecard" in shown["text/html"]
    assert "## Scorecard" in shown["text/markdown"] and "lmcritic Results run" in shown["text/plain"]
    check = outputs(nb, "check_finding(results")[0]["data"]["text/plain"]
    assert check.startswith("Check(passed=") and "one-sided 95% lower bound" in check
    assert "<table" in outputs(nb, "results.cases(")[0]["data"]["text/html"]  # a DataFrame
    report = Path(outputs(nb, "results.report()")[0]["data"]["text/plain"].split("'")[1])
    assert report.is_file() and report.name == "report.html" and str(tmp / "home") in str(report)


def test_inline_scorecard_renders_in_chromium(executed) -> None:
    from test_browser import CHROMIUM, chromium, console_errors, read_png

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    nb, tmp = executed
    fragment = outputs(nb, "results = lmcritic.scan(")[0]["data"]["text/html"]
    page = tmp / "cell.html"
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
                    f'content="{STRICT_CSP}"></head><body><p id="outside">a notebook cell above</p>{fragment}</body>'
                    "</html>", encoding="utf-8")
    proc = chromium(tmp, "--dump-dom", page.as_uri())
    assert proc.returncode == 0 and console_errors(proc.stderr) == [], proc.stderr[-2000:]
    shot = tmp / "cell.png"
    chromium(tmp, "--hide-scrollbars", "--window-size=1100,900", f"--screenshot={shot}", page.as_uri())
    width, height, px = read_png(shot)
    ink = sum(1 for p in px if sum(p[:3]) < 600) / len(px)
    red = sum(1 for p in px if p[0] > 190 and p[1] < 70 and p[2] < 70)  # FAIL badges, failing tiles (#dc2626)
    green = sum(1 for p in px if p[0] < 40 and 130 < p[1] < 170 and 90 < p[2] < 130)  # pass badges (#059669)
    assert 0.02 < ink < 0.6 and red > 200 and green > 50, (ink, red, green)
