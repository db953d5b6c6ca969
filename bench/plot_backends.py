#!/usr/bin/env python3
"""Draw bench/backends.sh's CSV as an SVG: messages/s and p99 latency against connections.

usage: plot_backends.py CSV SVG

Two panels side by side sharing a logarithmic x axis (open connections), one line per backend,
with a legend. msgs/s is drawn on a linear axis from zero; p99 latency on a logarithmic axis when
it spans more than a factor of 20 (select/poll at many descriptors are orders of magnitude
slower than epoll), else linear from zero. Python standard library only.
"""

import csv
import math
import sys
from xml.sax.saxutils import escape

COLORS = {"select": "#d62728", "poll": "#ff7f0e", "epoll": "#1f77b4", "uring": "#2ca02c"}
OTHER_COLORS = ["#9467bd", "#8c564b", "#17becf", "#e377c2"]
MARKERS = {"select": "square", "poll": "triangle", "epoll": "circle", "uring": "diamond"}

WIDTH, HEIGHT = 1100, 540
PANEL_W, PANEL_H = 420, 330
PANEL_Y = 130
PANEL_X = (110, 640)


def read_points(path):
    """{backend: [(conns, msgs_per_s, p99_us), ...]} sorted by conns, in first-seen order."""
    series = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                point = (int(row["conns"]), float(row["msgs_per_s"]), float(row["p99_us"]))
            except (KeyError, ValueError):
                continue
            series.setdefault(row["backend"], []).append(point)
    for pts in series.values():
        pts.sort()
    return series


def nice_step(span, target=5):
    """A step of 1, 2 or 5 times a power of ten giving about target intervals over span."""
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_num(v):
    """Short tick label: 1.2M, 350k, 40, 0.5."""
    a = abs(v)
    if a >= 1e6:
        s = f"{v / 1e6:.1f}".rstrip("0").rstrip(".") + "M"
    elif a >= 1e3:
        s = f"{v / 1e3:.1f}".rstrip("0").rstrip(".") + "k"
    elif a >= 1 or a == 0:
        s = f"{v:.0f}"
    else:
        s = f"{v:.2g}"
    return s


class Axis:
    """Maps data values to pixels over [lo, hi], linear or logarithmic (base 10)."""

    def __init__(self, lo, hi, log, p0, p1):
        self.log, self.p0, self.p1 = log, p0, p1
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

    def __call__(self, v):
        if self.log:
            v = math.log10(v)
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def log_range(values):
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    return lo, hi


def log_ticks(lo, hi):
    """Decades from lo to hi, with 2x and 5x minor ticks (unlabelled)."""
    major, minor = [], []
    e = round(math.log10(lo))
    while 10 ** e <= hi * 1.0001:
        major.append(10 ** e)
        for m in (2, 5):
            if m * 10 ** e < hi:
                minor.append(m * 10 ** e)
        e += 1
    return major, minor


def marker(kind, x, y, color):
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{color}"/>'
    if kind == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{color}"/>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - 5.5:.1f} {x - 5.5:.1f},{y:.1f} {x:.1f},{y + 5.5:.1f} {x + 5.5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{color}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{color}"/>'


def panel(out, series, px, title, ylabel, index, xr):
    """One chart at x offset px; index picks the value (1: msgs/s, 2: p99)."""
    x0, x1, y0, y1 = px, px + PANEL_W, PANEL_Y + PANEL_H, PANEL_Y
    values = [p[index] for pts in series.values() for p in pts if p[index] > 0]
    if not values:
        values = [1.0]
    ylog = index == 2 and max(values) / min(values) > 20
    if ylog:
        ylo, yhi = log_range(values)
        ymajor, yminor = log_ticks(ylo, yhi)
    else:
        step = nice_step(max(values) * 1.05 or 1)
        ylo, yhi = 0.0, step * math.ceil(max(values) * 1.05 / step)
        ymajor = [i * step for i in range(int(round(yhi / step)) + 1)]
        yminor = []
    ax = Axis(xr[0], xr[1], True, x0, x1)
    ay = Axis(ylo, yhi, ylog, y0, y1)
    xmajor, xminor = log_ticks(*xr)

    out.append(f'<text x="{(x0 + x1) / 2}" y="{y1 - 14}" class="ptitle">{escape(title)}</text>')
    # Grid and ticks.
    for v in yminor:
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{ay(v):.1f}" y2="{ay(v):.1f}" class="minor"/>')
    for v in ymajor:
        y = ay(v)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<line x1="{x0 - 5}" x2="{x0}" y1="{y:.1f}" y2="{y:.1f}" class="axis"/>')
        out.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" class="ytick">{fmt_num(v)}</text>')
    for v in xminor:
        x = ax(v)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y1}" class="minor"/>')
    for v in xmajor:
        x = ax(v)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y1}" class="grid"/>')
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 5}" class="axis"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + 20}" class="xtick">{fmt_num(v)}</text>')
    out.append(f'<rect x="{x0}" y="{y1}" width="{PANEL_W}" height="{PANEL_H}" class="frame"/>')
    # Axis labels.
    out.append(f'<text x="{(x0 + x1) / 2}" y="{y0 + 45}" class="label">'
               "open connections (8 active, the rest idle; log scale)</text>")
    cy = (y0 + y1) / 2
    out.append(f'<text x="{x0 - 62}" y="{cy}" class="label" '
               f'transform="rotate(-90 {x0 - 62} {cy})">{escape(ylabel)}'
               f'{" (log scale)" if ylog else ""}</text>')
    # One line per backend.
    for name, pts in series.items():
        color = series_color(name, series)
        xy = [(ax(p[0]), ay(p[index])) for p in pts if p[index] > 0 or not ylog]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       'stroke-width="2.5" stroke-linejoin="round"/>')
        for x, y in xy:
            out.append(marker(MARKERS.get(name, "circle"), x, y, color))


def series_color(name, series):
    if name in COLORS:
        return COLORS[name]
    others = [n for n in series if n not in COLORS]
    return OTHER_COLORS[others.index(name) % len(OTHER_COLORS)]


def render(series):
    conns = [p[0] for pts in series.values() for p in pts] or [10, 10000]
    xr = log_range(conns)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
        "<style>"
        ".title{font-size:19px;font-weight:bold;text-anchor:middle;fill:#222}"
        ".sub{font-size:13px;text-anchor:middle;fill:#555}"
        ".ptitle{font-size:15px;font-weight:bold;text-anchor:middle;fill:#222}"
        ".label{font-size:13px;text-anchor:middle;fill:#333}"
        ".xtick{font-size:12px;text-anchor:middle;fill:#333}"
        ".ytick{font-size:12px;text-anchor:end;fill:#333}"
        ".legend{font-size:13px;fill:#222}"
        ".grid{stroke:#d8d8d8;stroke-width:1}"
        ".minor{stroke:#eeeeee;stroke-width:1}"
        ".axis{stroke:#333;stroke-width:1}"
        ".frame{fill:none;stroke:#333;stroke-width:1}"
        "</style>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="32" class="title">why epoll exists: cost per wake-up grows '
        "with watched descriptors for select/poll</text>",
        f'<text x="{WIDTH / 2}" y="56" class="sub">netkit echo serve --backend B, 8 active '
        "64-byte ping-pong connections plus idle ones (select stops at FD_SETSIZE 1024)</text>",
    ]
    panel(out, series, PANEL_X[0], "throughput (higher is better)", "echoed messages per second",
          1, xr)
    panel(out, series, PANEL_X[1], "p99 round-trip latency (lower is better)",
          "p99 latency, microseconds", 2, xr)
    # Legend, centred under the title.
    names = list(series)
    lx = WIDTH / 2 - len(names) * 110 / 2
    for i, name in enumerate(names):
        x = lx + i * 110
        color = series_color(name, series)
        out.append(f'<line x1="{x}" x2="{x + 30}" y1="78" y2="78" stroke="{color}" '
                   'stroke-width="2.5"/>')
        out.append(marker(MARKERS.get(name, "circle"), x + 15, 78, color))
        out.append(f'<text x="{x + 38}" y="83" class="legend">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: plot_backends.py CSV SVG", file=sys.stderr)
        return 2
    series = read_points(argv[1])
    if not series:
        print(f"plot_backends: no data points in {argv[1]}", file=sys.stderr)
        return 1
    with open(argv[2], "w") as f:
        f.write(render(series))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
