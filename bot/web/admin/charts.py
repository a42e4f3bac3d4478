"""The budget page's chart, drawn on the server as inline SVG: no script, no chart library.

Bars are the API calls of each day (all platforms) (left axis), the line is that day's estimated spend (right
axis). Every text in it is escaped; its looks come from the dashboard's stylesheet.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 16, 28  # room for the axes' labels


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return 10.0 * power  # not reached: value <= 10 * power always


def calls_and_spend(rows: list[tuple[str, int, float]], *, first: date, count: int) -> Markup:
    """An SVG chart of ``count`` days from ``first``; ``rows`` are ``ledger.calls_by_day``'s.

    Days without calls are drawn as zero, so the time axis is even.
    """
    by_day = {day[:10]: (calls, cost) for day, calls, cost in rows}
    days = [first + timedelta(days=n) for n in range(count)]
    calls = [by_day.get(d.isoformat(), (0, 0.0))[0] for d in days]
    spend = [by_day.get(d.isoformat(), (0, 0.0))[1] for d in days]
    top_calls, top_spend = nice_ceiling(max(calls, default=0)), nice_ceiling(max(spend, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / count
    base = TOP + plot_h

    def y(value: float, top: float) -> float:
        return base - plot_h * value / top

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="API calls and spend per day, last {count} days">',
    ]
    for fraction in (0.0, 0.5, 1.0):  # grid lines with both axes' labels
        at = y(fraction, 1.0)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{at + 4:.1f}" text-anchor="end">'
                     f'{top_calls * fraction:g}</text>')
        parts.append(f'<text class="axis spend-axis" x="{WIDTH - RIGHT + 6}" y="{at + 4:.1f}">'
                     f'${top_spend * fraction:.2f}</text>')
    for n, (day, day_calls, day_spend) in enumerate(zip(days, calls, spend)):
        x = LEFT + n * slot
        height = plot_h * day_calls / top_calls
        tip = escape(f"{day.isoformat()}: {day_calls} calls, ${day_spend:.3f}")
        parts.append(f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{base - height:.1f}" '
                     f'width="{slot * 0.7:.1f}" height="{height:.1f}"><title>{tip}</title></rect>')
        if (count - 1 - n) % 7 == 0:  # weekly, counted back from today so today is always labelled
            parts.append(f'<text class="axis" x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                         f'{day:%m-%d}</text>')
    points = " ".join(f"{LEFT + (n + 0.5) * slot:.1f},{y(v, top_spend):.1f}" for n, v in enumerate(spend))
    parts.append(f'<polyline class="spend" points="{points}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
