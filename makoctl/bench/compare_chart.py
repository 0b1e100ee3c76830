"""The chart of ``makoctl bench compare``: an SVG written by hand (no plotting
dependency), TPS and p50/p99 latency against RTT, one line per protocol."""

from __future__ import annotations

import math
from typing import Any
from xml.sax.saxutils import escape

COLORS = {"mako": "#1f77b4", "luigi": "#2ca02c", "2pc-paxos": "#d62728"}
PANEL_W, PANEL_H, MARGIN_L, MARGIN_B, MARGIN_T, GAP = 300, 190, 58, 36, 26, 24


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def chart_svg(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """An SVG, written by hand: per (workload, cluster, leaders) a row of three panels, TPS, p50 and p99 latency
    (of the headline transaction type) against RTT; one line per protocol."""
    good = [r for r in rows if r["tps"] is not None and not r["error"]]
    groups: dict[tuple, list[dict]] = {}
    for r in good:
        groups.setdefault((r["workload"], r["cluster"], r["leaders"]), []).append(r)
    protocols = [p for p in settings["protocols"] if any(r["protocol"] == p for r in good)]
    metrics = [("tps", "throughput (TPS)", 1.0), ("latency_us_p50", "p50 latency (ms)", 1e-3),
               ("latency_us_p99", "p99 latency (ms)", 1e-3)]
    cell_w = MARGIN_L + PANEL_W + GAP
    cell_h = MARGIN_T + PANEL_H + MARGIN_B + 22
    width = 3 * cell_w + 20
    height = 50 + max(1, len(groups)) * cell_h + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">makoctl bench compare: {settings["clients"]} '
           f'clients, {settings["duration_s"]:g} s per cell, seed {settings["seed"]}</text>']
    x_leg = 10
    for p in protocols:  # legend
        color = COLORS.get(p, "#555")
        out.append(f'<line x1="{x_leg}" y1="36" x2="{x_leg + 20}" y2="36" stroke="{color}" stroke-width="2"/>'
                   f'<text x="{x_leg + 24}" y="40">{escape(p)}</text>')
        x_leg += 40 + 7 * len(p)
    if not groups:
        out.append('<text x="10" y="70">no cell ran</text>')
    for gi, ((workload, cluster, leaders), group) in enumerate(groups.items()):
        y0 = 50 + gi * cell_h
        head = group[0]["headline_type"]
        out.append(f'<text x="10" y="{y0 + 14}" font-weight="bold">{escape(workload)} on {escape(cluster)}'
                   f'{", leaders spread" if leaders == "spread" else ""} (latency: {escape(head)} transactions)'
                   '</text>')
        rtts = sorted({r["rtt_ms"] for r in group})
        x_max = _nice_max(max(rtts)) if max(rtts) > 0 else 1.0
        for mi, (key, label, scale) in enumerate(metrics):
            px = 10 + mi * cell_w + MARGIN_L
            py = y0 + MARGIN_T
            values = [r[key] * scale for r in group if r[key] is not None]
            y_max = _nice_max(max(values) * 1.05) if values else 1.0

            def X(v: float) -> float:
                return px + PANEL_W * v / x_max

            def Y(v: float) -> float:
                return py + PANEL_H - PANEL_H * v / y_max

            out.append(f'<rect x="{px}" y="{py}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>')
            for k in range(5):  # y grid and ticks
                v = y_max * k / 4
                out.append(f'<line x1="{px}" y1="{Y(v):.1f}" x2="{px + PANEL_W}" y2="{Y(v):.1f}" stroke="#eee"/>'
                           f'<text x="{px - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:,.4g}</text>')
            for v in rtts:  # x ticks at the measured RTTs
                out.append(f'<line x1="{X(v):.1f}" y1="{py + PANEL_H}" x2="{X(v):.1f}" y2="{py + PANEL_H + 4}" '
                           f'stroke="#666"/><text x="{X(v):.1f}" y="{py + PANEL_H + 16}" '
                           f'text-anchor="middle">{v:g}</text>')
            out.append(f'<text x="{px + PANEL_W / 2}" y="{py + PANEL_H + 30}" text-anchor="middle">RTT (ms)</text>'
                       f'<text x="{px + PANEL_W / 2}" y="{py - 6}" text-anchor="middle">{escape(label)}</text>')
            for p in protocols:
                pts = sorted((r["rtt_ms"], r[key] * scale) for r in group if r["protocol"] == p and r[key] is not None)
                if not pts:
                    continue
                color = COLORS.get(p, "#555")
                if len(pts) > 1:
                    path = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in pts)
                    out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
                for x, y in pts:
                    out.append(f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{color}">'
                               f'<title>{escape(p)}: {y:,.4g} at RTT {x:g} ms</title></circle>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
