"""Scoring's pure rules: parsing, matching, fire modes, caps, decay, hysteresis, and the
replay property (any order in, one ledger out)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.document import InvalidRules, parse
from scoring.matching import Profile
from scoring.rules import RuleSet
from tracker.storage.records import Event, ScoreEntry

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC

RULES = """
[grades]
hot = 100
warm = 40
rearm_below = 80

[decay]
half_life_days = 30

[caps]
total = 400

[group.content]
cap_per_day = 40

[[rule]]
id = "pricing"
name = "料金ページを閲覧"
when = { type = "pageview", path = "/pricing*" }
points = 10
fire = "once_per_object"
cap_per_day = 30

[[rule]]
id = "case-studies"
when = { type = "pageview", path = "/case/*" }
points = 15
group = "content"

[[rule]]
id = "whitepaper"
when = { type = "event", name = "download" }
points = 25
fire = "once_per_object"
group = "content"

[[rule]]
id = "form"
when = { type = "identify" }
points = 30
fire = "once"

[[rule]]
id = "careers"
when = { type = "pageview", path = "/careers*" }
points = -10

[[rule]]
id = "ad"
when = { type = "pageview", utm_medium = "cpc" }
points = 5
cap_per_day = 10

[[rule]]
id = "free-mail"
axis = "fit"
when = { trait = "email_domain", in = ["gmail.com", "yahoo.co.jp", "outlook.jp"] }
points = -20

[[rule]]
id = "title"
axis = "fit"
when = { trait = "title", contains = ["部長", "マネージャー", "manager", "CTO"] }
points = 30
"""


def rules() -> RuleSet:
    return RuleSet(parse(RULES), site_id=1, version=1)


PATHS = ["/", "/pricing", "/pricing/enterprise", "/case/a", "/case/b", "/careers", "/blog"]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 60))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["pageview", "pageview", "event", "identify"]))
        at = T0 + draw(st.integers(0, 20 * DAY))
        path = draw(st.sampled_from(PATHS))
        name = "download" if kind == "event" else ("contact" if kind == "identify" else None)
        props = (
            {"url": f"https://x.example/{draw(st.sampled_from('abc'))}.pdf"}
            if kind == "event"
            else None
        )
        medium = draw(st.sampled_from([None, "cpc", "email"]))
        events.append(
            Event(
                1,
                kind,
                "v" * 32,
                at,
                url=f"https://x.example{path}",
                name=name,
                props=props,
                utm_medium=medium,
                id=i + 1,
            )
        )
    return events


def score_by_hand(entries: list[ScoreEntry], now: int) -> float:
    return sum(
        float(e.points * 0.5 ** ((now - e.at) / (30 * DAY))) if now > e.at else float(e.points)
        for e in entries
        if e.axis == "engagement"
    )


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False), st.integers(1, 5))
def test_any_order_replays_to_one_ledger_and_the_score_is_its_decayed_sum(
    events: list[Event], rnd: random.Random, chunks: int
) -> None:
    rs = rules()
    reference = rs.evaluate([], sorted(events, key=lambda e: (e.at, e.id)), None)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert rs.evaluate([], shuffled, None) == reference
    # scored as it arrives, in time order, in batches: the same ledger
    ordered = sorted(events, key=lambda e: (e.at, e.id))
    cuts = sorted(rnd.sample(range(len(ordered) + 1), min(chunks, len(ordered) + 1)))
    ledger: list[ScoreEntry] = []
    for a, b in zip([0, *cuts], [*cuts, len(ordered)], strict=True):
        ledger += rs.evaluate(ledger, ordered[a:b], None)
    assert ledger == reference
    # a replay over what is already in the ledger adds nothing
    assert rs.evaluate(ledger, shuffled, None) == []
    now = T0 + 40 * DAY
    standing = rs.standing(ledger, now)
    assert standing.score == pytest.approx(score_by_hand(ledger, now), abs=1e-5)
    assert standing.score == pytest.approx(rs.standing(reference, now).score)
    assert sum(e.points for e in ledger if e.points > 0) <= 400  # the total cap


def pageview(i: int, path: str, at: int, **kw: object) -> Event:
    return Event(1, "pageview", "v" * 32, at, url=f"https://x.example{path}", id=i, **kw)  # type: ignore[arg-type]


def test_fire_modes_and_caps() -> None:
    rs = rules()
    events = [pageview(i, p, T0 + i) for i, p in enumerate(
        ["/pricing", "/pricing", "/pricing/a", "/pricing/b", "/pricing/c", "/case/a", "/case/b",
         "/case/c", "/careers"], start=1)]  # fmt: skip
    events.append(Event(1, "identify", "v" * 32, T0 + 50, name="contact", id=50))
    events.append(Event(1, "identify", "v" * 32, T0 + 51, name="contact", id=51))
    got = rs.evaluate([], events, None)
    by_rule: dict[str, list[int]] = {}
    for e in got:
        by_rule.setdefault(e.rule, []).append(e.points)
    assert by_rule["pricing"] == [10, 10, 10]  # once per page, then the daily cap of 30
    assert by_rule["case-studies"] == [15, 15, 10]  # the group's daily cap of 40
    assert (
        "capped by the group content's daily cap"
        in got[[e.rule for e in got].index("case-studies") + 2].reason
    )
    assert by_rule["form"] == [30]  # once
    assert by_rule["careers"] == [-10]  # negative points
    # the next day (Japan's midnight) the daily caps start over
    later = rs.evaluate(got, [pageview(99, "/pricing/d", T0 + DAY)], None)
    assert [e.points for e in later] == [10]


def test_profile_rules_hold_points_while_they_match() -> None:
    rs = rules()
    gmail = Profile({"email_domain": "gmail.com", "title": "営業部長"})
    first = rs.evaluate([], [], gmail, T0)
    assert sorted((e.rule, e.points) for e in first) == [("free-mail", -20), ("title", 30)]
    assert rs.evaluate(first, [], gmail, T0) == []  # still matching: nothing new
    company = Profile({"email_domain": "example.co.jp", "title": "ＭＡＮＡＧＥＲ"})
    second = rs.evaluate(first, [], company, T0 + 1)
    assert [(e.rule, e.points) for e in second] == [("free-mail", 20)]
    assert rs.standing([*first, *second], T0).fit == 30
    assert rs.standing([*first, *second], T0).fit_grade == "A"


def test_hysteresis() -> None:
    g = rules().grading
    assert g.hot(0, 120, True) == (True, False)  # up: send, disarm
    assert g.hot(110, 130, False) == (False, False)  # still hot: nothing
    assert g.hot(85, 120, False) == (False, False)  # fell, but not below rearm_below
    assert g.hot(70, 120, False) == (True, False)  # fell below 80: armed, sends again
    assert [g.grade(100), g.grade(40), g.grade(39.9)] == ["hot", "warm", "cool"]
    assert g.decay(100, T0, T0 + 30 * DAY) == pytest.approx(50)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[rule]]\nid = "a"\nwhen = {trait = "title"}\npoints = 1', "needs in"),
        ('[[rule]]\nid = "a"\nwhen = {type = "visit"}\npoints = 1', "when.type"),
        ('[[rule]]\nid = "a"\nwhen = {}\npoints = 1\nfire = "twice"', "fire"),
        ("[grades]\nhot = 10\nwarm = 40", "warm <= rearm_below < hot"),
        (
            '[[rule]]\nid = "a"\nwhen = {}\npoints = 1\n[[rule]]\nid = "a"\nwhen = {}\npoints = 1',
            "repeated",
        ),
        ("[[rule]\n", "not valid TOML"),
        ('[[rule]]\nid = "a"\nwhen = {}\npoints = 1\nbogus = 1', "bogus"),
    ],
)
def test_bad_documents_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidRules, match=says.replace("(", r"\(")):
        parse(text)


def test_the_readme_example_is_a_valid_rule_file() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("# scoring.toml")
    doc = parse(readme[start : readme.index("```", start)])
    assert len(doc.rule) >= 10
    assert {r.axis for r in doc.rule} == {"engagement", "fit"}
    assert {r.fire for r in doc.rule} == {"once", "every", "once_per_object"}
