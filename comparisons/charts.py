"""Server-rendered SVG charts for the lead dashboard: no JavaScript, no CDN, no chart library.

Each function takes plain lists (from a metrics snapshot) and returns a SafeString holding one
<svg>. Every label passes through `escape` (model names and e-mails are data), and every mark
carries a <title> so hovering shows the exact number. Sizes are in viewBox units; the SVG
scales to its container's width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'
INK = "#1b1f24"
MUTED = "#57606a"
GRID = "#e6e9ed"
ACCENT = "#0b5cad"
ACCENT_SOFT = "#cfe2f7"
WARN = "#c2410c"


def _svg(width: float, height: float, body: list[str], label: str) -> SafeString:
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
        f'height="{height:g}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" {FONT}>'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _empty(width: float, height: float, label: str, message: str = "No data yet") -> SafeString:
    return _svg(
        width,
        height,
        [
            f'<rect x="0.5" y="0.5" width="{width - 1:g}" height="{height - 1:g}" rx="6" '
            f'fill="#f6f8fa" stroke="{GRID}"/>',
            f'<text x="{width / 2:g}" y="{height / 2:g}" text-anchor="middle" '
            f'dominant-baseline="middle" fill="{MUTED}" font-size="13">{escape(message)}</text>',
        ],
        label,
    )


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _fmt(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value:g}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mix(c1: str, c2: str, t: float) -> str:
    t = min(1.0, max(0.0, t))
    a = [int(c1[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(c2[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def diverging(value: float) -> str:
    """0 → orange, 0.5 → near white, 1 → blue: for win rates."""
    if value >= 0.5:
        return _mix("#f7f7f7", "#2166ac", (value - 0.5) * 2)
    return _mix("#f7f7f7", "#d6604d", (0.5 - value) * 2)


def sequential(value: float) -> str:
    """0 → very light, 1 → the accent blue: for counts."""
    return _mix("#eef4fb", "#0b4a8b", value)


def _text_on(fill: str) -> str:
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#ffffff" if (0.299 * r + 0.587 * g + 0.114 * b) < 140 else INK


def _day_label(iso: str) -> str:
    return iso[5:] if len(iso) >= 10 else iso


def progress_chart(
    days: Sequence[str], daily: Sequence[int], cumulative: Sequence[int], target: int
) -> SafeString:
    """Judgments per day (bars) under the cumulative total (line) against the target."""
    width, height = 1000, 280
    label = "Counted judgments over time"
    if not days:
        return _empty(width, height, label)
    left, right, top, bottom = 56, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max(max(cumulative), target or 0, 1)
    ticks = nice_ticks(0, top_value)
    y_max = ticks[-1]
    n = len(days)
    slot = plot_w / n

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / y_max

    body = []
    for t in ticks:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y(t):.1f}" text-anchor="end" dominant-baseline="middle" '
            f'font-size="11" fill="{MUTED}">{_fmt(t)}</text>'
        )
    # Daily bars on the same, labelled axis as the line: a bar of 32 reads as 32. Small next to
    # the total, so each bar also prints its count while there is room for it.
    labelled = n <= 31
    for i, (day, count) in enumerate(zip(days, daily, strict=True)):
        h = plot_h * count / y_max
        x = left + i * slot + slot * 0.15
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot * 0.7, 1):.1f}" '
            f'height="{h:.1f}" fill="{ACCENT_SOFT}" stroke="{ACCENT}" stroke-opacity="0.4">'
            f"<title>{escape(day)}: {count} judgments</title></rect>"
        )
        if labelled and count:
            body.append(
                f'<text x="{x + max(slot * 0.7, 1) / 2:.1f}" y="{top + plot_h - h - 4:.1f}" '
                f'text-anchor="middle" font-size="11" fill="{INK}">{_fmt(count)}</text>'
            )
    if target:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
            f'stroke="{WARN}" stroke-dasharray="5 4"/>'
            f'<text x="{width - right}" y="{y(target) - 5:.1f}" text-anchor="end" font-size="11" '
            f'fill="{WARN}">target {_fmt(target)}</text>'
        )
    points = [(left + (i + 0.5) * slot, y(v)) for i, v in enumerate(cumulative)]
    if len(points) == 1:
        points = [(left, points[0][1]), (left + plot_w, points[0][1])]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    area = f"{points[0][0]:.1f},{y(0):.1f} {line} {points[-1][0]:.1f},{y(0):.1f}"
    body.append(f'<polygon points="{area}" fill="{ACCENT}" fill-opacity="0.10"/>')
    body.append(
        f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2.5" '
        f'stroke-linejoin="round"/>'
    )
    for i, (px, py) in enumerate(points[: len(cumulative)]):
        if len(cumulative) <= 40:
            body.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{ACCENT}">'
                f"<title>{escape(days[i])}: {cumulative[i]} in total</title></circle>"
            )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        body.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle" font-size="11" fill="{MUTED}">{escape(_day_label(days[i]))}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{MUTED}"/>'
    )
    return _svg(width, height, body, label)


def histogram(edges: Sequence[float], counts: Sequence[int], *, label: str) -> SafeString:
    """Vertical bars for a binned distribution (edges has one more entry than counts)."""
    width, height = 560, 220
    total = sum(counts)
    if not total:
        return _empty(width, height, label)
    left, right, top, bottom = 16, 16, 20, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(counts)
    peak = max(counts)
    body = []
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x = left + i * slot
        share = count / total
        body.append(
            f'<rect x="{x + 4:.1f}" y="{top + plot_h - h:.1f}" width="{slot - 8:.1f}" '
            f'height="{h:.1f}" rx="3" fill="{sequential(0.35 + 0.65 * (i + 1) / len(counts))}">'
            f"<title>{edges[i]:g}\u2013{edges[i + 1]:g}: {count} comparisons ({share:.0%})</title></rect>"
            f'<text x="{x + slot / 2:.1f}" y="{top + plot_h - h - 5:.1f}" text-anchor="middle" '
            f'font-size="11" fill="{INK}">{share:.0%}</text>'
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 15}" text-anchor="middle" '
            f'font-size="11" fill="{MUTED}">{edges[i]:g}\u2013{edges[i + 1]:g}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{MUTED}"/>'
    )
    return _svg(width, height, body, label)


def leaderboard_chart(models: Sequence[dict]) -> SafeString:
    """One row per model: the rating as a dot with its 95% interval as a whisker."""
    label = "Model ratings (Elo scale) with 95% bootstrap intervals"
    width = 1000
    if not models:
        return _empty(width, 120, label)
    row_h, top, bottom, left, right = 30, 12, 34, 170, 70
    height = top + bottom + row_h * len(models)
    low = min(m["lower"] for m in models)
    high = max(m["upper"] for m in models)
    pad = max(10.0, (high - low) * 0.08)
    ticks = nice_ticks(low - pad, high + pad, count=7)
    x_min, x_max = ticks[0], ticks[-1]
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * (v - x_min) / (x_max - x_min)

    body = []
    for t in ticks:
        body.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{height - bottom}" stroke="{GRID}"/>'
            f'<text x="{x(t):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11" '
            f'fill="{MUTED}">{t:g}</text>'
        )
    for i, m in enumerate(models):
        cy = top + row_h * i + row_h / 2
        if i % 2 == 0:
            body.append(
                f'<rect x="0" y="{cy - row_h / 2:.1f}" width="{width}" height="{row_h}" fill="#f6f8fa"/>'
            )
        tip = escape(
            f"{m['name']}: {m['rating']:.0f} (95% {m['lower']:.0f}\u2013{m['upper']:.0f}), "
            f"{m['wins']} W / {m['ties']} T / {m['losses']} L"
        )
        body.append(
            f'<text x="{left - 10}" y="{cy:.1f}" text-anchor="end" dominant-baseline="middle" '
            f'font-size="13" fill="{INK}">{escape(_short(m["name"], 24))}</text>'
            f"<g><title>{tip}</title>"
            f'<line x1="{x(m["lower"]):.1f}" x2="{x(m["upper"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" '
            f'stroke="{ACCENT}" stroke-width="2.5" stroke-linecap="round"/>'
            f'<line x1="{x(m["lower"]):.1f}" x2="{x(m["lower"]):.1f}" y1="{cy - 6:.1f}" '
            f'y2="{cy + 6:.1f}" stroke="{ACCENT}" stroke-width="2"/>'
            f'<line x1="{x(m["upper"]):.1f}" x2="{x(m["upper"]):.1f}" y1="{cy - 6:.1f}" '
            f'y2="{cy + 6:.1f}" stroke="{ACCENT}" stroke-width="2"/>'
            f'<circle cx="{x(m["rating"]):.1f}" cy="{cy:.1f}" r="6" fill="#fff" stroke="{ACCENT}" '
            f'stroke-width="3"/></g>'
            f'<text x="{width - right + 8}" y="{cy:.1f}" dominant-baseline="middle" font-size="13" '
            f'font-weight="600" fill="{INK}">{m["rating"]:.0f}</text>'
        )
    return _svg(width, height, body, label)


def win_rate_heatmap(
    names: Sequence[str], rates: Sequence[Sequence[float | None]], counts: Sequence[Sequence[int]]
) -> SafeString:
    """Row model's win rate against the column model (ties as half), with the pair count."""
    label = "Pairwise win rate of the row model against the column model"
    n = len(names)
    if not n:
        return _empty(480, 120, label)
    cell = 64 if n <= 8 else 48 if n <= 14 else 34
    # Column labels are rotated 40 degrees up and to the right: leave room for the longest one
    # above the grid and, for the last columns, to the right of it (7 units per character at
    # font size 12 is a generous average, so a label is never cut by the SVG's edge).
    longest = min(22, max(len(name) for name in names)) * 7
    rise, reach = longest * math.sin(math.radians(40)), longest * math.cos(math.radians(40))
    left, top = 170, 24 + math.ceil(rise)
    width = left + cell * n + max(16, math.ceil(reach - cell / 2) + 8)
    height = top + cell * n + 16
    body = []
    for k, name in enumerate(names):
        cx = left + cell * k + cell / 2
        body.append(
            f'<text transform="translate({cx:.1f},{top - 8}) rotate(-40)" font-size="12" '
            f'fill="{INK}">{escape(_short(name, 22))}</text>'
            f'<text x="{left - 10}" y="{top + cell * k + cell / 2:.1f}" text-anchor="end" '
            f'dominant-baseline="middle" font-size="12" fill="{INK}">{escape(_short(name, 22))}</text>'
        )
    for i in range(n):
        for k in range(n):
            x, y = left + cell * k, top + cell * i
            rate, count = rates[i][k], counts[i][k]
            if i == k or rate is None:
                body.append(
                    f'<rect x="{x + 1}" y="{y + 1}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                    f'fill="#f6f8fa"><title>{"same model" if i == k else "never compared"}</title></rect>'
                )
                continue
            fill = diverging(rate)
            ink = _text_on(fill)
            tip = escape(f"{names[i]} vs {names[k]}: wins {rate:.0%} of {count} judgments")
            body.append(
                f'<g><title>{tip}</title><rect x="{x + 1}" y="{y + 1}" width="{cell - 2}" '
                f'height="{cell - 2}" rx="3" fill="{fill}"/>'
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 - (5 if cell >= 48 else 0):.1f}" '
                f'text-anchor="middle" dominant-baseline="middle" font-size="{13 if cell >= 48 else 10}" '
                f'font-weight="600" fill="{ink}">{rate * 100:.0f}%</text>'
            )
            if cell >= 48:
                body.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + 12:.1f}" text-anchor="middle" '
                    f'dominant-baseline="middle" font-size="10" fill="{ink}" fill-opacity="0.8">'
                    f"n={count}</text>"
                )
            body.append("</g>")
    return _svg(width, height, body, label)


def throughput_heatmap(
    rows: Sequence[tuple[str, Sequence[int]]], days: Sequence[str]
) -> SafeString:
    """Raters by day: each cell's shade is that rater's judgments on that day."""
    label = "Judgments per rater per day"
    if not rows or not days:
        return _empty(720, 120, label, "No judgments in the last weeks")
    cell_w, cell_h, left, top = 22, 20, 190, 34
    width = left + cell_w * len(days) + 12
    height = top + cell_h * len(rows) + 10
    peak = max((max(counts) for _, counts in rows), default=0) or 1
    body = []
    for k, day in enumerate(days):
        if k % 7 == 0 or k == len(days) - 1:
            body.append(
                f'<text x="{left + cell_w * k + cell_w / 2:.1f}" y="{top - 10}" text-anchor="middle" '
                f'font-size="11" fill="{MUTED}">{escape(_day_label(day))}</text>'
            )
    for i, (name, counts) in enumerate(rows):
        y = top + cell_h * i
        body.append(
            f'<text x="{left - 8}" y="{y + cell_h / 2:.1f}" text-anchor="end" '
            f'dominant-baseline="middle" font-size="12" fill="{INK}">{escape(_short(name, 26))}</text>'
        )
        for k, count in enumerate(counts):
            fill = "#f6f8fa" if not count else sequential(0.15 + 0.85 * count / peak)
            body.append(
                f'<rect x="{left + cell_w * k + 1}" y="{y + 1}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" rx="2" fill="{fill}"><title>{escape(name)}, '
                f"{escape(days[k])}: {count}</title></rect>"
            )
            # The count is printed in its cell: a title shows on hover only, never on touch.
            if count:
                body.append(
                    f'<text x="{left + cell_w * k + cell_w / 2:.1f}" y="{y + cell_h / 2:.1f}" '
                    f'text-anchor="middle" dominant-baseline="middle" font-size="9" '
                    f'fill="{_text_on(fill)}" aria-hidden="true">{_fmt(count)}</text>'
                )
    return _svg(width, height, body, label)


def meter(share: float | None, *, label: str) -> SafeString:
    """A slim horizontal progress bar."""
    width, height = 240, 12
    share = 0.0 if share is None else min(1.0, max(0.0, share))
    return _svg(
        width,
        height,
        [
            f'<rect x="0" y="0" width="{width}" height="{height}" rx="6" fill="{GRID}"/>',
            f'<rect x="0" y="0" width="{width * share:.1f}" height="{height}" rx="6" fill="{ACCENT}"/>',
        ],
        label,
    )


def count_bars(
    labels: Sequence[str], counts: Sequence[int], *, label: str, unit: str
) -> SafeString:
    """Vertical bars, one per labelled category (e.g. judgments per comparison), each with its
    count above it; heights on one linear scale from 0."""
    width, height = 560, 200
    if not sum(counts):
        return _empty(width, height, label)
    left, right, top, bottom = 16, 16, 20, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(counts)
    peak = max(counts)
    body = []
    for i, (name, count) in enumerate(zip(labels, counts, strict=True)):
        h = plot_h * count / peak
        x = left + i * slot
        body.append(
            f'<rect x="{x + 4:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot - 8, 1):.1f}" '
            f'height="{h:.1f}" rx="3" fill="{sequential(0.35 + 0.65 * (i + 1) / len(counts))}">'
            f"<title>{escape(name)}: {count} {escape(unit)}</title></rect>"
            f'<text x="{x + slot / 2:.1f}" y="{top + plot_h - h - 5:.1f}" text-anchor="middle" '
            f'font-size="11" fill="{INK}">{count}</text>'
            f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 15}" text-anchor="middle" '
            f'font-size="11" fill="{MUTED}">{escape(name)}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{MUTED}"/>'
    )
    return _svg(width, height, body, label)
