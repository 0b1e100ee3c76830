"""What a benchmark measured, kept small: one HDR histogram of latencies
(hdrhistogram: 1 us to 60 s, 3 significant digits) and completions per
second, whatever the run's length. Shared by the benches that drive
requests themselves; charts in the terminal (plotext) and an HTML report
(``--report DIR``: JSON and an HTML page with an SVG chart)."""

from __future__ import annotations

import html
import json
import os
import re
import threading
import time
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 60_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the chart as plain text, piped or not


class Recorder:
    """Thread-safe: writer threads call ``record``."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.hist = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        self.per_second: dict[int, int] = {}
        self.errors = 0
        self.lock = threading.Lock()

    def record(self, latency_s: float, done_at: float | None = None) -> None:
        us = min(max(int(latency_s * 1e6), LOWEST_US), HIGHEST_US)
        second = int(((time.monotonic() if done_at is None else done_at) - self.start))
        with self.lock:
            self.hist.record_value(us)
            self.per_second[second] = self.per_second.get(second, 0) + 1

    def error(self) -> None:
        with self.lock:
            self.errors += 1

    def summary(self) -> dict[str, Any]:
        """Latency percentiles in ms, count, errors."""
        with self.lock:
            h = self.hist
            out: dict[str, Any] = {"count": h.get_total_count(), "errors": self.errors}
            if h.get_total_count():
                for p in PERCENTILES:
                    out[f"p{p:g}_ms"] = round(h.get_value_at_percentile(p) / 1000, 3)
                out["max_ms"] = round(h.get_max_value() / 1000, 3)
                out["mean_ms"] = round(h.get_mean_value() / 1000, 3)
            return out

    def timeline(self) -> list[tuple[int, int]]:
        """(second since start, completions in it), gaps included as zeros."""
        with self.lock:
            if not self.per_second:
                return []
            last = max(self.per_second)
            return [(s, self.per_second.get(s, 0)) for s in range(last + 1)]


def terminal_chart(timeline: list[tuple[int, int]], title: str, marks: list[tuple[float, str]] | None = None,
                   width: int = 78, height: int = 16) -> str:
    """Throughput over time as text (plotext), with vertical marks (a kill...)."""
    import plotext as plt

    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    xs = [s for s, _n in timeline] or [0]
    ys = [n for _s, n in timeline] or [0]
    plt.plot(xs, ys, marker="braille")
    for at, _label in marks or []:
        plt.vline(at)
    plt.title(title)
    plt.xlabel("seconds")
    plt.ylabel("ops/s")
    return _ANSI.sub("", plt.build())


def _svg(timeline: list[tuple[int, int]], marks: list[tuple[float, str]], width: int = 720, height: int = 240) -> str:
    pad = 40
    top = max([n for _s, n in timeline] or [1]) or 1
    span = max(1, len(timeline) - 1)

    def x(s: float) -> float:
        return pad + (width - 2 * pad) * s / span

    def y(n: float) -> float:
        return height - pad - (height - 2 * pad) * n / top

    points = " ".join(f"{x(s):.1f},{y(n):.1f}" for s, n in timeline)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
             f'<text x="{pad}" y="{pad - 8}" font-size="12">{top} ops/s</text>',
             f'<text x="{width - pad}" y="{height - pad + 16}" font-size="12" text-anchor="end">{span} s</text>',
             f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/>']
    for at, label in marks:
        parts.append(f'<line x1="{x(at):.1f}" y1="{pad}" x2="{x(at):.1f}" y2="{height - pad}" stroke="#d62728" '
                     f'stroke-dasharray="4 3"/><text x="{x(at) + 3:.1f}" y="{pad + 12}" font-size="11" '
                     f'fill="#d62728">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_report(report_dir: str, name: str, results: dict[str, Any], timeline: list[tuple[int, int]],
                 marks: list[tuple[float, str]] | None = None) -> list[str]:
    """``name``.json (results, timeline) and ``name``.html (a table and the chart)."""
    os.makedirs(report_dir, exist_ok=True)
    marks = marks or []
    json_path = os.path.join(report_dir, f"{name}.json")
    with open(json_path, "w") as f:
        json.dump({"results": results, "timeline": timeline, "marks": marks}, f, indent=2)
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in results.items())
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(name)}</title>"
            f"<h1>{html.escape(name)}</h1><h2>throughput over time</h2>{_svg(timeline, marks)}"
            f"<h2>results</h2><table border='1' cellpadding='4'>{rows}</table>")
    html_path = os.path.join(report_dir, f"{name}.html")
    with open(html_path, "w") as f:
        f.write(page)
    return [json_path, html_path]
