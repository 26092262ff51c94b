"""The HTML report in a real headless Chromium: no console errors (so no CSP violation, no script error),
the drill-down script opens the right section, and a screenshot shows the main sections rendered."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from lmcritic.report._escape import anchor
from lmcritic.report.markdown import write_reports

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="chromium is not installed (Debian package `chromium`)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking")
SECTIONS = ("summary", "scorecard", "findings", "explanations", "cases", "probes", "reproduce")


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_causal_dir, tiny_causal):
    from test_report import real_run, rich_run

    tmp = tmp_path_factory.mktemp("browser")
    runner, run_id = real_run(tmp, tiny_causal_dir, tiny_causal)
    rich_run(runner.store, run_id)  # every plot kind, hostile text everywhere, a content warning
    acc = next(f for f in runner.store.findings(run_id) if f.name == "accuracy")
    return write_reports(runner.store, run_id, tmp / "out")["html"], acc.evidence[0], tmp


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def console_errors(stderr: str) -> list[str]:
    """Page console output (Chromium logs it as ``CONSOLE``): CSP violations, uncaught errors, failed loads."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_opens_without_console_errors_and_drills_down(report) -> None:
    page, case_id, tmp = report
    target = anchor("performance.sst2", case_id)
    proc = chromium(tmp, "--dump-dom", f"{page.as_uri()}#{target}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    dom = proc.stdout
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom, sid
    assert 'id="content-warning"' in dom
    # the inline script ran (CSP allowed it): the probe's collapsed case list was opened at the linked case
    opened = re.search(rf'<details class="probe" id="{anchor("cases", "performance.sst2")}"([^>]*)>', dom)
    assert opened and "open" in opened.group(1)
    closed = re.search(rf'<details class="probe" id="{anchor("cases", "performance.perplexity")}"([^>]*)>', dom)
    assert closed and "open" not in closed.group(1)
    assert dom.count("<script") == 1  # nothing injected became a script


def test_broken_page_would_be_caught(tmp_path) -> None:
    """The console check is not vacuous: a page with a script error and a blocked fetch produces lines."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                   "content=\"default-src 'none'\"></head><body><img src=\"http://example.invalid/x.png\">"
                   "</body></html>")
    proc = chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert console_errors(proc.stderr)


def test_screenshot_shows_main_sections(report) -> None:
    page, _, tmp = report
    shot = tmp / "shot.png"
    proc = chromium(tmp, "--hide-scrollbars", "--window-size=1280,1400", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    width, height, px = read_png(shot)
    assert (width, height) == (1280, 1400)
    ink = sum(1 for p in px if sum(p[:3]) < 600) / len(px)
    assert 0.02 < ink < 0.6  # rendered text and plots, neither blank nor a solid block
    top = px[: width * 120]  # the title band: dark text
    assert sum(1 for p in top if sum(p[:3]) < 200) > 300
    red = sum(1 for p in px if p[0] > 190 and p[1] < 70 and p[2] < 70)  # FAIL badges / failing tiles (#dc2626)
    orange = sum(1 for p in px if p[0] > 200 and 100 < p[1] < 140 and p[2] < 30)  # content-warning border
    assert red > 200 and orange > 200


def read_png(path: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """Pixels of a PNG: Pillow when installed (fast), else a small pure-Python decoder."""
    try:
        from PIL import Image
    except ImportError:
        return decode_png(path)
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        return rgb.width, rgb.height, list(rgb.getdata())


def decode_png(path: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) without extra packages."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        head = body if kind == b"IHDR" else head
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride, prev, pixels = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        _unfilter(f, line, prev, bpp)
        pixels += [tuple(line[i:i + bpp]) for i in range(0, stride, bpp)]
        prev = line
    return width, height, pixels


def _unfilter(f: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1:
            line[i] = (line[i] + a) & 255
        elif f == 2:
            line[i] = (line[i] + b) & 255
        elif f == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
