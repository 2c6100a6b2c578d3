"""Server-rendered SVG charts for the dashboard: no script, nothing to load, and the
page's strict CSP untouched (presentation attributes, not inline styles).

Pure geometry: series of numbers in, coordinates and axis labels out; the template
draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
COLORS = ("#8a4b2a", "#e6a56f", "#315a85", "#b1361e", "#1a7f37")


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    points: str
    """``x,y x,y …`` for a polyline."""
    dots: list[tuple[float, float, int]]
    """Each point and its value (a tooltip)."""


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    value: int
    name: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    lines: list[Line]
    bars: list[Bar]
    y_ticks: list[tuple[float, int]]
    x_labels: list[tuple[float, str]]
    baseline: float
    left: int
    right: int


def nice_top(value: int) -> int:
    """The axis' top: four steps of 1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 4:
        return 4
    quarter = value / 4
    power = 10 ** math.floor(math.log10(quarter))
    step: float = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= quarter)
    return math.ceil(step) * 4


def _frame(
    count: int, top: int, labels: Sequence[str]
) -> tuple[float, list[tuple[float, int]], list[tuple[float, str]]]:
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(count, 1)
    ticks = [(TOP + inner_h - inner_h * i / 4, top * i // 4) for i in range(5)]
    every = max(1, math.ceil(count / 10))
    xs = [(LEFT + step * (i + 0.5), labels[i]) for i in range(0, count, every)]
    return step, ticks, xs


def line_chart(series: Sequence[tuple[str, Sequence[int]]], labels: Sequence[str]) -> Chart:
    count = len(labels)
    top = nice_top(max((max(values, default=0) for _, values in series), default=0))
    step, ticks, xs = _frame(count, top, labels)
    inner_h = HEIGHT - TOP - BOTTOM
    lines = []
    for n, (name, values) in enumerate(series):
        dots = [(round(LEFT + step * (i + 0.5), 1), round(TOP + inner_h * (1 - v / top), 1), v)
                for i, v in enumerate(values)]  # fmt: skip
        points = " ".join(f"{x},{y}" for x, y, _ in dots)
        lines.append(Line(name, COLORS[n % len(COLORS)], points, dots))
    return Chart(WIDTH, HEIGHT, lines, [], ticks, xs, TOP + inner_h, LEFT, WIDTH - RIGHT)


def bar_chart(series: Sequence[tuple[str, Sequence[int]]], labels: Sequence[str]) -> Chart:
    """Bars side by side per day (new leads, hot leads)."""
    count, groups = len(labels), max(len(series), 1)
    top = nice_top(max((max(values, default=0) for _, values in series), default=0))
    step, ticks, xs = _frame(count, top, labels)
    inner_h = HEIGHT - TOP - BOTTOM
    width = max(step * 0.8 / groups, 1.0)
    bars = []
    for n, (name, values) in enumerate(series):
        color = COLORS[(n + 3) % len(COLORS)]
        for i, v in enumerate(values):
            h = inner_h * v / top
            x = LEFT + step * i + step * 0.1 + width * n
            bars.append(Bar(round(x, 1), round(TOP + inner_h - h, 1), round(width, 1),
                            round(h, 1), color, v, name))  # fmt: skip
    return Chart(WIDTH, HEIGHT, [], bars, ticks, xs, TOP + inner_h, LEFT, WIDTH - RIGHT)
