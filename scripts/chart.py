#!/usr/bin/env python3
"""Draws throughput against concurrency as an SVG, from `coffer bench ledger` RESULT lines.

Usage: chart.py OUT.svg PGBENCH_TPS SERIES=DIR_GLOB ...
Each series is a label and a list of files named <prefix>-<N>c-<suffix>.txt holding a RESULT line; N is the number of
callers. Standard library only, so that the benchmark script needs nothing installed.
"""
import glob
import re
import sys


def points(pattern):
    out = []
    for path in glob.glob(pattern):
        m = re.search(r"-(\d+)c-", path)
        text = open(path).read()
        r = re.search(r"ops_per_s=([0-9.]+)", text)
        if m and r:
            out.append((int(m.group(1)), float(r.group(1))))
    return sorted(out)


def main():
    out_path, pg_tps = sys.argv[1], float(sys.argv[2])
    series = []
    for arg in sys.argv[3:]:
        label, pattern = arg.split("=", 1)
        pts = points(pattern)
        if pts:
            series.append((label, pts))
    if not series:
        sys.exit("chart.py: no data points")
    width, height, left, right, top, bottom = 720, 420, 80, 200, 30, 60
    xs = sorted({x for _, pts in series for x, _ in pts})
    ymax = max([pg_tps] + [y for _, pts in series for _, y in pts]) * 1.1
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x):  # callers on a log2 axis
        import math
        lo, hi = math.log2(xs[0]), math.log2(xs[-1]) if xs[-1] > xs[0] else math.log2(xs[0]) + 1
        return left + (math.log2(x) - lo) / (hi - lo) * plot_w

    def py(y):
        return top + plot_h - y / ymax * plot_h

    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">Durable charges per second against concurrent callers</text>']
    for i in range(6):
        y = ymax * i / 5
        svg.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
    for x in xs:
        svg.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{x}</text>')
    svg.append(f'<text x="{left + plot_w / 2}" y="{height - 15}" text-anchor="middle">concurrent callers (log scale)</text>')
    svg.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(pg_tps):.1f}" y2="{py(pg_tps):.1f}" stroke="#555" stroke-dasharray="6,4"/>')
    legend = [("pgbench tpcb-like tps (8 clients)", "#555", True)]
    for n, (label, pts) in enumerate(series):
        c = colors[n % len(colors)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
        svg.append(f'<path d="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in pts:
            svg.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"><title>{label}, {x} callers: {y:,.0f}/s</title></circle>')
        legend.append((label, c, False))
    for i, (label, c, dashed) in enumerate(legend):
        y = top + 10 + i * 20
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        svg.append(f'<line x1="{left + plot_w + 12}" x2="{left + plot_w + 36}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2"{dash}/>')
        svg.append(f'<text x="{left + plot_w + 40}" y="{y + 4}">{label}</text>')
    svg.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
