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


LINE_COLORS = ("#0a5bd3", "#e68c00", "#2e8b57", "#9b59b6", "#c0392b", "#16a085")


def line_chart(
    series: dict[str, list[tuple[float, float | None]]], *, title: str = "", width: int = 640,
    height: int = 220, log_y: bool = False, bands: list[tuple[float, float, str]] = (),
) -> SafeString:  # fmt: skip
    """Lines over a shared x axis (steps); None / non-finite values break a line and are
    marked at the top; ``bands``: shaded x ranges (a finding's window) with a label."""
    import math

    pad_l, pad_r, pad_t, pad_b = 48, 10, 14, 22
    pts = [
        (x, y)
        for values in series.values()
        for x, y in values
        if y is not None and math.isfinite(y)
    ]
    parts = [
        f'<svg class="chart line" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not pts:
        parts.append('<text x="8" y="20" font-size="12">No data yet</text></svg>')
        return mark_safe("".join(parts))  # noqa: S308
    fy = (lambda v: math.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    xs = [x for x, _ in pts]
    ys = [fy(y) for _, y in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def px(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def py(y: float) -> float:
        return pad_t + (1 - (fy(y) - y0) / (y1 - y0)) * (height - pad_t - pad_b)

    for start, end, label in bands:
        a, b = px(max(start, x0)), px(min(end, x1))
        parts.append(
            f'<rect class="band" x="{a:.1f}" y="{pad_t}" width="{max(b - a, 2):.1f}" '
            f'height="{height - pad_t - pad_b}" fill="#c0392b" fill-opacity="0.12">'
            f"<title>{escape(label)}</title></rect>"
        )
    for i, (name, values) in enumerate(series.items()):
        colour = LINE_COLORS[i % len(LINE_COLORS)]
        path, pen = [], "M"
        for x, y in values:
            if y is None or not math.isfinite(y):
                parts.append(
                    f'<text x="{px(x):.1f}" y="{pad_t}" font-size="10" fill="#c0392b">×</text>'
                )
                pen = "M"
                continue
            path.append(f"{pen}{px(x):.1f},{py(y):.1f}")
            pen = "L"
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.5">'
            f"<title>{escape(name)}</title></path>"
            f'<text x="{pad_l + 6 + 130 * i}" y="{height - 4}" font-size="11" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    lo, hi = (10**y0, 10**y1) if log_y else (y0, y1)
    parts.append(
        f'<text x="4" y="{pad_t + 8}" font-size="10">{hi:.3g}</text>'
        f'<text x="4" y="{height - pad_b}" font-size="10">{lo:.3g}</text>'
        f'<text x="{width - pad_r}" y="{height - pad_b + 12}" font-size="10" text-anchor="end">'
        f"step {x1:g}</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every dynamic part is escaped above
