"""Inline SVG charts, drawn on the server (no JavaScript, no CDN). Labels are escaped."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ROW_H = 22
LABEL_W = 110
BAR_W = 320
VALUE_W = 70
COLORS = ("#0a5bd3", "#9bbcf0")


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return f"{text}{unit}"


def bar_chart(
    items: list[tuple[str, float]], *, unit: str = "", title: str = "",
    max_value: float | None = None,
) -> SafeString:  # fmt: skip
    """Horizontal bars, one per ``(label, value)``."""
    top = max_value or max((v for _, v in items), default=0) or 1
    height = ROW_H * max(len(items), 1) + 8
    width = LABEL_W + BAR_W + VALUE_W
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not items:
        parts.append('<text x="4" y="16" font-size="12">No data yet</text>')
    for i, (label, value) in enumerate(items):
        y = 4 + i * ROW_H
        w = max(0.0, min(1.0, value / top)) * BAR_W
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 8}" '
            f'fill="{COLORS[0]}"><title>{escape(label)}: {escape(_fmt(value, unit))}</title></rect>'
            f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 14}" font-size="12">'
            f"{escape(_fmt(value, unit))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every dynamic part is escaped above


def grouped_bar_chart(
    items: list[tuple[str, float, float]], *, series: tuple[str, str], unit: str = "",
    title: str = "",
) -> SafeString:  # fmt: skip
    """Two bars per label (e.g. median and p90), with a legend."""
    top = max((max(a, b) for _, a, b in items), default=0) or 1
    group_h = ROW_H * 2
    height = group_h * max(len(items), 1) + 28
    width = LABEL_W + BAR_W + VALUE_W
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for s, name in enumerate(series):
        x = LABEL_W + s * 90
        parts.append(
            f'<rect x="{x}" y="4" width="12" height="12" fill="{COLORS[s]}"/>'
            f'<text x="{x + 16}" y="14" font-size="12">{escape(name)}</text>'
        )
    for i, (label, *values) in enumerate(items):
        y = 24 + i * group_h
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + 20}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for s, value in enumerate(values):
            w = max(0.0, min(1.0, value / top)) * BAR_W
            yy = y + s * (ROW_H - 4)
            parts.append(
                f'<rect x="{LABEL_W}" y="{yy + 2}" width="{w:.1f}" height="{ROW_H - 8}" '
                f'fill="{COLORS[s]}"><title>{escape(label)} {escape(series[s])}: '
                f"{escape(_fmt(value, unit))}</title></rect>"
                f'<text x="{LABEL_W + w + 4:.1f}" y="{yy + 13}" font-size="11">'
                f"{escape(_fmt(value, unit))}</text>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def histogram_chart(
    counts: list[int], *, edges: list[float], unit: str = "", title: str = "",
    threshold: float | None = None, width: int = 360, height: int = 120,
) -> SafeString:  # fmt: skip
    """Vertical bars of a histogram (``len(edges) == len(counts) + 1``), with an optional
    dashed threshold line."""
    top = max(counts, default=0) or 1
    n = max(len(counts), 1)
    plot_h, base = height - 28, height - 16
    bar = (width - 20) / n
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, c in enumerate(counts):
        h = c / top * plot_h
        x = 10 + i * bar
        label = f"{_fmt(edges[i], '')}-{_fmt(edges[i + 1], unit)}: {c}"
        parts.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="{COLORS[0]}"><title>{escape(label)}</title></rect>'
        )
    if threshold is not None and edges and edges[-1] > edges[0]:
        x = 10 + (threshold - edges[0]) / (edges[-1] - edges[0]) * (width - 20)
        tip = escape(_fmt(threshold, unit))
        parts.append(
            f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{base}" stroke="#c0392b" '
            f'stroke-dasharray="4 3"><title>threshold {tip}</title></line>'
        )
    if edges:
        parts.append(
            f'<text x="10" y="{height - 2}" font-size="11">{escape(_fmt(edges[0], unit))}</text>'
            f'<text x="{width - 10}" y="{height - 2}" font-size="11" text-anchor="end">'
            f"{escape(_fmt(edges[-1], unit))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every dynamic part is escaped above
