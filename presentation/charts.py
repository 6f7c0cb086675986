"""Inline SVG charts for the run report: no script, no fonts or assets fetched at view time."""

from __future__ import annotations

from html import escape
from typing import Dict, List, Sequence, Tuple

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def line_chart(series: Dict[str, Sequence[float]], title: str, x_label: str = "epoch",
               width: int = 420, height: int = 220) -> str:
    """One line per named series over 1..n; empty series are left out."""
    series = {k: list(v) for k, v in series.items() if len(v)}
    if not series:
        return ""
    left, right, top, bottom = 52, 12, 28, 34
    values = [v for s in series.values() for v in s]
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1e-9 + abs(high) * 0.05, low - abs(low) * 0.05
    n = max(len(s) for s in series.values())
    span_x = max(n - 1, 1)

    def xy(i: int, v: float) -> Tuple[float, float]:
        return (left + (width - left - right) * i / span_x,
                top + (height - top - bottom) * (1 - (v - low) / (high - low)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
             f'stroke="#888"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{_fmt(high)}</text>',
             f'<text x="{left - 4}" y="{height - bottom}" font-size="10" text-anchor="end">'
             f'{_fmt(low)}</text>',
             f'<text x="{(left + width) / 2}" y="{height - 8}" font-size="10" text-anchor="middle">'
             f'{escape(x_label)} 1..{n}</text>']
    for k, (name, s) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(s)))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        for i, v in enumerate(s):
            x, y = xy(i, v)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                         f'<title>{escape(name)} {i + 1}: {_fmt(v)}</title></circle>')
        parts.append(f'<text x="{width - right - 4}" y="{top + 12 + 12 * k}" font-size="10" '
                     f'text-anchor="end" fill="{color}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(groups: List[str], series: Dict[str, Sequence[float]], title: str,
              width: int = 560, height: int = 240) -> str:
    """Grouped bars: one group per entry of ``groups``, one bar per series in each."""
    if not groups or not series:
        return ""
    left, right, top, bottom = 44, 12, 40, 46
    high = max([v for s in series.values() for v in s] + [1e-9])
    group_w = (width - left - right) / len(groups)
    bar_w = group_w * 0.8 / len(series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
             f'stroke="#888"/>',
             f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{_fmt(high)}</text>']
    for k, name in enumerate(series):
        parts.append(f'<rect x="{left + 90 * k}" y="22" width="10" height="10" '
                     f'fill="{PALETTE[k % len(PALETTE)]}"/><text x="{left + 14 + 90 * k}" y="31" '
                     f'font-size="10">{escape(name)}</text>')
    plot_h = height - top - bottom
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for k, (name, s) in enumerate(series.items()):
            v = s[g]
            h = plot_h * v / high
            parts.append(f'<rect x="{x0 + k * bar_w:.1f}" y="{height - bottom - h:.1f}" '
                         f'width="{bar_w * 0.92:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(name)} {escape(group)}: '
                         f'{_fmt(v)}</title></rect>')
        parts.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{height - bottom + 14}" '
                     f'font-size="10" text-anchor="middle">{escape(group)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(rows: List[Tuple[str, float]], title: str, width: int = 560, row_h: int = 16) -> str:
    """Horizontal bars, one per (label, value) row."""
    if not rows:
        return ""
    label_w, top = 190, 26
    high = max([v for _, v in rows] + [1e-9])
    height = top + row_h * len(rows) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for i, (label, v) in enumerate(rows):
        y = top + i * row_h
        w = (width - label_w - 60) * v / high
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" font-size="10" text-anchor="end">'
                     f'{escape(label[:34])}</text><rect x="{label_w}" y="{y + 2}" width="{w:.1f}" '
                     f'height="{row_h - 4}" fill="{PALETTE[0]}"/><text x="{label_w + w + 4:.1f}" '
                     f'y="{y + 11}" font-size="10">{_fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)
