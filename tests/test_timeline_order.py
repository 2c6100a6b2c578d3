"""The timeline's order: the events (already in time order) with the few other items put
in their places is what sorting the whole list by (time, kind) gives."""

from __future__ import annotations

import random

from tracker.api import answers
from tracker.api.leads import _KIND_ORDER, _in_order


def _other(kind: int, at: int, n: int) -> answers.TimelineItem:
    if kind == 0:
        return answers.ConsentItem(at, f"c{n}", "v", None, True, None, "1", "banner")
    if kind == 1:
        return answers.SubmissionItem(at, f"s{n}", "l", "v", None, None, "form", None, None, False)
    if kind == 2:
        return answers.IdentifiedItem("v", None, "form", at, at, None, f"l{n}", at)
    return (answers.MergeItem, answers.UnmergeItem)[kind - 3](at, f"m{n}", "a", "b", None, None)


def test_putting_the_others_in_place_equals_sorting_everything() -> None:
    for seed in range(500):
        _compare(random.Random(seed), seed)


def _compare(rng: random.Random, seed: int) -> None:
    times = sorted(rng.randrange(20) for _ in range(rng.randrange(0, 30)))
    events = [answers.EventItem("pageview", at, "v", url=f"/{i}") for i, at in enumerate(times)]
    # Any order: items of one kind at one time stay as given in both (stable sorts).
    others = [_other(rng.randrange(5), rng.randrange(-2, 22), n) for n in range(rng.randrange(8))]
    everything = [*events, *others]
    expected = sorted(everything, key=lambda item: (item.at, _KIND_ORDER[type(item)]))
    assert _in_order(list(events), list(others)) == expected, f"seed {seed}"
