"""The console's timeline arrangement (pure): days in the user's zone, visits within a
day, lines without a visit joining the one they happened in, the anonymous part before
the first identification, pages of lines that never split a millisecond; the dashboard
chart's axis."""

from __future__ import annotations

from tracker.api import answers
from tracker.console import chart, timeline
from tracker.console.i18n import Clock

NOW = 1_796_000_000_000  # 2026-11-30 09:53:20 JST
HOUR = 3_600_000


def view(at: int, sid: str, path: str = "/") -> answers.EventItem:
    return answers.EventItem("pageview", at, "v" * 32, sid, "site",
                             f"https://www.example.co.jp{path}?a=1", title=path)  # fmt: skip


def identified(at: int) -> answers.IdentifiedItem:
    return answers.IdentifiedItem("v" * 32, "site", "form", at, 0, None, "ld_x", at=at)


def test_days_visits_and_the_anonymous_part() -> None:
    clock = Clock("en", "Asia/Tokyo", NOW)
    items = [view(NOW - 26 * HOUR, "a", "/pricing"), view(NOW - 25 * HOUR, "a", "/case"),
             view(NOW - HOUR, "b", "/contact"), identified(NOW - HOUR + 5),
             view(NOW - HOUR + 9, "b", "/thanks"), view(NOW, "c")]  # fmt: skip
    days = timeline.arrange(items, clock, identified_at=NOW - HOUR + 5)
    assert [d.label for d in days] == ["Monday, November 30, 2026", "Sunday, November 29, 2026"]
    today, yesterday = days
    assert [s.sid for s in today.sessions] == ["b", "c"]
    assert [e.kind for e in today.sessions[0].entries] == ["pageview", "identified", "pageview"]
    assert [e.anonymous for e in today.sessions[0].entries] == [True, False, False]
    assert yesterday.sessions[0].anonymous
    assert yesterday.sessions[0].pages == 2
    assert not today.sessions[0].anonymous
    before = timeline.before_identifying(items, NOW - HOUR + 5)
    assert (before.pages, before.visits, before.since) == (3, 2, NOW - 26 * HOUR)
    assert timeline.before_identifying(items, None).pages == 0
    assert timeline.path_of("https://www.example.co.jp/p?q=1") == "/p?q=1"
    assert timeline.clock_time(clock, NOW) == "09:53"


def test_pages_of_lines_never_split_a_millisecond() -> None:
    items = [view(NOW + i // 2, "s") for i in range(10)]  # two lines per millisecond
    shown, earlier = timeline.window(items, None, 3)
    assert [i.at for i in shown] == [NOW + 3, NOW + 3, NOW + 4, NOW + 4]
    assert earlier == NOW + 3
    rest, last = timeline.window(items, earlier, 100)
    assert len(rest) == 6
    assert last is None
    assert timeline.before_param("12") == 12
    assert timeline.before_param("１２") is None  # not ASCII digits
    assert timeline.before_param("-1") is None
    assert timeline.before_param(None) is None


def test_the_chart_axis_is_round_and_points_stay_inside() -> None:
    assert [chart.nice_top(v) for v in (0, 5, 26, 99, 101)] == [4, 8, 40, 100, 200]
    drawn = chart.line_chart([("pageviews", [0, 26, 13])], ["a", "b", "c"])
    ys = [y for _, y, _ in drawn.lines[0].dots]
    assert min(ys) >= chart.TOP
    assert max(ys) == drawn.baseline
    bars = chart.bar_chart([("new_leads", [1, 0]), ("hot_leads", [0, 2])], ["a", "b"])
    assert [b.value for b in bars.bars] == [1, 0, 0, 2]
