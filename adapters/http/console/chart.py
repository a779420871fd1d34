"""Goal checks per day as an inline SVG bar chart drawn on the server (no script, no library).

Each day's bar stacks the checks that found the goal reached under those that found it not
reached yet; failed checks (the model did not answer) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from markupsafe import Markup, escape

from memory.base import GoalCheck

DAYS = 30
_WIDTH = 600
_HEIGHT = 170
_LEFT = 32
_RIGHT = 8
_TOP = 10
_BOTTOM = 24
REACHED = "#1a7f37"
NOT_YET = "#b35900"
_AXIS = "#57606a"


@dataclass(frozen=True)
class DayCount:
    day: date
    reached: int = 0
    not_yet: int = 0

    @property
    def total(self) -> int:
        return self.reached + self.not_yet


def chart_since(now: datetime, days: int = DAYS) -> datetime:
    """The start (UTC midnight) of the first day a chart of ``days`` days ending today shows."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def daily_counts(checks: Iterable[GoalCheck], *, now: datetime, days: int = DAYS) -> list[DayCount]:
    """One entry per day (UTC) of the last ``days`` days, oldest first."""
    first = chart_since(now, days).date()
    reached = [0] * days
    not_yet = [0] * days
    for check in checks:
        if check.error is not None:
            continue
        index = (check.checked_at.astimezone(UTC).date() - first).days
        if 0 <= index < days:
            if check.reached:
                reached[index] += 1
            else:
                not_yet[index] += 1
    return [DayCount(first + timedelta(days=i), reached[i], not_yet[i]) for i in range(days)]


def describe(counts: list[DayCount]) -> str:
    reached = sum(c.reached for c in counts)
    not_yet = sum(c.not_yet for c in counts)
    return (
        f"Goal checks over the last {len(counts)} days: {reached + not_yet} in all, "
        f"{reached} reached, {not_yet} not yet."
    )


def _ceiling(value: int) -> int:
    """A round top for the axis: 1, 2, 5, 10, 20, 50..."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


def goal_chart_svg(counts: list[DayCount], *, label: str) -> Markup:
    """The chart, labelled for screen readers with ``label`` and a one-line description."""
    top = _ceiling(max((c.total for c in counts), default=0) or 1)
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(1, len(counts))
    bar = max(1.0, slot * 0.7)
    scale = plot_h / top
    base = _TOP + plot_h
    text = describe(counts)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{escape(label)}: {escape(text)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f"<desc>{escape(text)}</desc>",
        f'<line x1="{_LEFT}" y1="{base}" x2="{_WIDTH - _RIGHT}" y2="{base}" stroke="{_AXIS}"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="{_AXIS}"/>',
        _label(_LEFT - 4, _TOP + 4, str(top), anchor="end"),
        _label(_LEFT - 4, base, "0", anchor="end"),
    ]
    for i, count in enumerate(counts):
        x = _LEFT + i * slot + (slot - bar) / 2
        reached_h = count.reached * scale
        not_yet_h = count.not_yet * scale
        tip = f"{count.day.isoformat()}: {count.reached} reached, {count.not_yet} not yet"
        parts.append(f"<g><title>{escape(tip)}</title>")
        if count.reached:
            parts.append(_rect(x, base - reached_h, bar, reached_h, fill=REACHED, kind="reached"))
        if count.not_yet:
            y = base - reached_h - not_yet_h
            parts.append(_rect(x, y, bar, not_yet_h, fill=NOT_YET, kind="not-yet"))
        parts.append("</g>")
    for i in sorted({0, len(counts) // 2, len(counts) - 1}):
        if 0 <= i < len(counts):
            x = _LEFT + i * slot + slot / 2
            parts.append(_label(x, _HEIGHT - 6, counts[i].day.strftime("%d %b"), anchor="middle"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only


def _rect(x: float, y: float, w: float, h: float, *, fill: str, kind: str) -> str:
    return (
        f'<rect class="bar-{kind}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
        f'height="{h:.1f}" fill="{fill}"/>'
    )


def _label(x: float, y: float, text: str, *, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="{_AXIS}">{escape(text)}</text>'
    )
