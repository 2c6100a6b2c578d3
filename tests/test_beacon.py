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


# The one-pass page view (``page_view``) against the general path, on generated bodies.
_VALUES: dict[str, list[object]] = {
    "site": ["k1", "k_-9", "", "k 1", "k" * 65, 7, None],
    "type": ["pageview", "event", "identify", "PAGEVIEW", None, 1],
    "vid": ["a" * 32, "0123456789abcdef" * 2, "A" * 32, "a" * 31, "a" * 32 + "\n", None],
    "sid": ["s1", "s-_9" * 16, "has space", "s" * 65, "", 5, None],
    "url": [
        "https://x.jp/p?utm_source=n",
        "http://x.jp/",
        "ftp://x.jp/",
        "",
        "https://x.jp/ a",
        "https://x.jp/" + "p" * 4090,
        "https://x.jp/" + "ペ" * 4083,  # 4,096 characters: the longest allowed
        "https://x.jp/" + "ペ" * 4084,
        "https://x.jp/\n",
        "https://x.jp/\x7f",
        "https://例え.jp/ページ",
        None,
        3,
    ],
    "referrer": [
        "https://www.google.com/",
        "android-app://x",
        "",
        "bad ref",
        "r" * 4096,
        "r" * 4097,
        None,
        False,
    ],
    "title": [
        "Pricing",
        "料金",
        "",
        "t" * 600,
        "t" * 512 + "\x01",
        "t" * 511 + "\x01",
        "a\x01b",
        "tab\tok",
        "line\n",
        None,
        2,
    ],
    "ts": [1700000000000, 0, -1, 2**53, 2**53 - 1, 1.5, 1e3, True, "1", None],
    "sent": [1700000000050, 1.0, -5, None],
    "gpc": [True, False, None, 1, "true"],
    "name": ["signup", None],
    "props": [{"plan": "pro"}, None],
    "extra": [1, None],
}


def _generated_bodies(count: int) -> list[bytes]:
    import random

    import orjson

    rng = random.Random(1604)
    bodies = []
    for _ in range(count):
        raw: dict[str, object] = dict(VALID)  # a valid page view, one to four fields changed
        for field in rng.sample(sorted(_VALUES), rng.randint(1, 4)):
            if rng.random() < 0.15:
                raw.pop(field, None)
            else:
                raw[field] = rng.choice(_VALUES[field])
        raw = dict(rng.sample(sorted(raw.items()), len(raw)))
        bodies.append(orjson.dumps(raw))
    return [
        *bodies,
        b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/","url":""}',
        b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/\\ud800"}',
        b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/\\udc00x"}',
        b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/\xff"}',
        b'{"events":[{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/"}]}',
        b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","url":"https://x.jp/","ts":99999999999999999999}',
        b'[{"site":"k1"}]', b"", b"null", b'{"site":"k1","type":"pageview"', b"{} trailing",
    ]  # fmt: skip


def test_one_pass_page_view_equals_the_general_path() -> None:
    import orjson

    from tracker.beacon import page_view

    taken = 0
    for body in _generated_bodies(4000):
        fast = page_view(body)
        try:
            general = [validate(raw, index=i) for i, raw in
                       enumerate(parse_body(body, max_events=20))]  # fmt: skip
        except (BadRequest, PayloadTooLarge):
            general = None
        if fast is None:
            continue  # the general path decides, as before
        taken += 1
        assert general == [fast], body
        assert orjson.loads(body)["type"] == "pageview"
    # The generator reaches both outcomes, so the comparison above is not empty.
    assert 100 < taken < 3900


def test_one_pass_page_view_takes_the_tags_body() -> None:
    import orjson

    from tracker.beacon import page_view

    body = (b'{"site":"k1","type":"pageview","vid":"' + b"a" * 32 + b'","sid":"s1",'
            b'"url":"https://x.jp/p","referrer":"","title":"T","ts":1,"sent":2,'
            b'"gpc":true}')  # fmt: skip
    beacon = page_view(body)
    assert beacon == validate(VALID | {"sid": "s1", "url": "https://x.jp/p", "referrer": "",
                                       "title": "T", "ts": 1, "sent": 2, "gpc": True})  # fmt: skip
    assert page_view(body.replace(b'"gpc":true', b'"name":"x"')) is None  # not a lone page view
    # Limits count characters, as validate does, and a long title is cut, not refused.
    longest = "https://x.jp/" + "ペ" * 4083
    edge = page_view(orjson.dumps(VALID | {"url": longest, "title": "料" * 600}))
    assert edge is not None
    assert (edge.url, edge.title) == (longest, "料" * 512)
    assert page_view(orjson.dumps(VALID | {"url": longest + "ペ"})) is None
