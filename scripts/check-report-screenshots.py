#!/usr/bin/env python3
"""Opens every plot of an initscope report in headless Chromium and fails when one renders blank.

Usage: check-report-screenshots.py REPORT.html [OUT_DIR]
Each plot (<div class="plot" data-plot=ID>) is cut out into a page of its own and screenshotted
by Debian's chromium (headless), which is the element screenshot of that plot; the PNG is decoded
here (zlib + PNG row filters) and must have at least 0.5% of non-white pixels.
"""
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import zlib


def png_pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8, "8-bit PNG expected"
            bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ctype]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows


def non_white_fraction(path):
    w, h, bpp, rows = png_pixels(path)
    dark = 0
    for line in rows:
        for x in range(0, w * bpp, bpp):
            if min(line[x:x + min(bpp, 3)]) < 235:
                dark += 1
    return dark / float(w * h)


def screenshot(page, png, w, h, tries=3):
    """Screenshots `page` into `png` with a fresh Chromium profile; returns `png`.

    Headless Chromium now and then dies (seen in CI: SIGSEGV on one launch out of 108)
    without anything being wrong with the page. A crash is not a blank plot, so a crashed run is
    retried with a new profile; only `tries` crashes in a row fail the check, naming the plot.
    """
    outcome = ""
    for attempt in range(1, tries + 1):
        if os.path.exists(png):
            os.remove(png)
        with tempfile.TemporaryDirectory(prefix="initscope-chromium-") as profile:
            try:
                done = subprocess.run(
                    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
                     f"--window-size={w},{h}", f"--screenshot={png}", "file://" + os.path.abspath(page)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
                code = done.returncode
                outcome = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                ok = code == 0
            except subprocess.TimeoutExpired:
                outcome, ok = "no answer in 120 s", False
        if ok and os.path.exists(png):
            return png
        print(f"{os.path.basename(page)}: chromium failed ({outcome}), try {attempt} of {tries}",
              file=sys.stderr)
    sys.exit(f"chromium could not screenshot {page} in {tries} tries (last: {outcome})")


report = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="initscope-shots-")
os.makedirs(out, exist_ok=True)
html = open(report, encoding="utf-8").read()
plots = re.findall(r'<div class="plot" data-plot="([^"]+)">(.*?)</div>', html, re.S)
assert plots, "no plots found"
chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
failed = []
for pid, svg in plots:
    m = re.search(r'width="(\d+)" height="(\d+)"', svg)
    w, h = (int(m.group(1)), int(m.group(2))) if m else (600, 400)
    page = os.path.join(out, f"{pid}.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(f'<!DOCTYPE html><html><body style="margin:0;background:#fff">{svg}</body></html>')
    png = os.path.join(out, f"{pid}.png")
    frac = non_white_fraction(screenshot(page, png, w, h))
    if frac < 0.005:
        failed.append((pid, frac))
    print(f"{pid}: {frac:.1%} non-white")
if failed:
    sys.exit(f"blank plots: {failed}")
print(f"report screenshots: {len(plots)} plots rendered, none blank ({out})")
