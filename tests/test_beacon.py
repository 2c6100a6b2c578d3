from __future__ import annotations

import pytest

from tracker.beacon import MAX_TITLE, parse_body, validate
from tracker.http_errors import BadRequest, PayloadTooLarge

VALID = {"site": "k1", "type": "pageview", "vid": "a" * 32, "url": "https://x.jp/"}


def test_single_and_batch_bodies() -> None:
    assert parse_body(b'{"site": "k"}', max_events=5) == [{"site": "k"}]
    assert parse_body(b'{"events": [{}, {}]}', max_events=5) == [{}, {}]
    with pytest.raises(PayloadTooLarge):
        parse_body(b'{"events": [{}, {}, {}]}', max_events=2)


def test_title_is_truncated_not_refused() -> None:
    beacon = validate(VALID | {"title": "t" * (MAX_TITLE + 50)})
    assert beacon.title == "t" * MAX_TITLE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vid": "A" * 32}, "vid"),
        ({"sid": "has space"}, "sid"),
        ({"site": None}, "site"),
        ({"props": {"k": [1]}}, "props"),
        ({"props": {"k": 2**60}}, "props"),
        ({"ts": True}, "ts"),
        ({"referrer": "https://x.jp/\n"}, "referrer"),
    ],
)
def test_errors_name_the_field_not_the_value(change: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadRequest) as caught:
        validate(VALID | change, index=3)
    message = caught.value.message
    assert f"events[3].{field}" in message
    for value in change.values():
        if isinstance(value, str) and len(value) > 3:
            assert value.strip() not in message
