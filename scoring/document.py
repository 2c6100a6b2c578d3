"""The scoring rules document: one shape for the TOML file and the API's JSON.

The Structs are the contract (the OpenAPI schema of ``PUT /api/v1/scoring/rules`` is
generated from them); ``parse`` reads a TOML or JSON text into a checked ``Document``
and says which key is wrong, never a traceback. Every key is documented in the
README's scoring section.
"""

from __future__ import annotations

import tomllib
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from tracker.errors import Invalid

RuleId = Annotated[str, Meta(pattern="^[A-Za-z0-9_.-]{1,64}$", description="a rule id")]
Text = Annotated[str, Meta(max_length=200)]
# Whole numbers, typed as numbers that are multiples of 1: JSON Schema's ``integer`` also
# admits ``10.0``, which msgspec's ``int`` refuses; ``__post_init__`` makes them ints.
Points = Annotated[float, Meta(ge=-10_000, le=10_000, multiple_of=1)]
Cap = Annotated[float, Meta(ge=0, le=1_000_000, multiple_of=1)]
Words = Annotated[list[Text], Meta(max_length=500)]
PropValue = str | int | float | bool
MAX_RULES = 500


class InvalidRules(Invalid):
    """A rules document that cannot be used; the message names the key."""


class When(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a rule matches. Event keys (``type``, ``path``, ``name``, ``props``, ``utm_*``,
    ``referrer_host``) match each event; ``touch`` matches the lead's first or last touch
    (with the ``utm_*`` and ``referrer_host`` keys); ``trait`` matches a lead trait
    (with ``in``, ``not_in``, ``contains``, ``exists``). Text patterns are globs (``*``)."""

    type: Literal["pageview", "event", "identify", "consent"] | None = None
    path: Text | None = None
    name: Text | None = None
    props: dict[Text, PropValue] | None = None
    utm_source: Text | None = None
    utm_medium: Text | None = None
    utm_campaign: Text | None = None
    referrer_host: Text | None = None
    touch: Literal["first", "last"] | None = None
    trait: Text | None = None
    in_: Words | None = field(default=None, name="in")
    not_in: Words | None = None
    contains: Words | None = None
    exists: bool | None = None

    @property
    def on_lead(self) -> bool:
        """Matched against the lead (its traits or touches), not against each event."""
        return self.touch is not None or self.trait is not None


class Rule(Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: RuleId
    when: When
    points: Points
    name: Text = ""
    axis: Literal["engagement", "fit"] = "engagement"
    fire: Literal["once", "every", "once_per_object"] = "every"
    cap_per_day: Cap | None = None
    group: RuleId | None = None

    def __post_init__(self) -> None:
        self.points = int(self.points)
        self.cap_per_day = _whole(self.cap_per_day)


class Grades(Struct, forbid_unknown_fields=True):
    hot: float = 100
    warm: float = 40
    rearm_below: float = 80


class Decay(Struct, forbid_unknown_fields=True):
    half_life_days: Annotated[float, Meta(ge=0, le=3650)] = 30
    """0: engagement never decays."""


class FitGrades(Struct, forbid_unknown_fields=True):
    a: float = 30
    b: float = 10
    c: float = 0


class Group(Struct, forbid_unknown_fields=True, omit_defaults=True):
    cap_per_day: Cap | None = None
    cap: Cap | None = None

    def __post_init__(self) -> None:
        self.cap_per_day, self.cap = _whole(self.cap_per_day), _whole(self.cap)


class Caps(Struct, forbid_unknown_fields=True, omit_defaults=True):
    total: Cap | None = None
    utc_offset_hours: Annotated[float, Meta(ge=-12, le=14, multiple_of=1)] = 9
    """Where a day begins for ``cap_per_day`` (Japan's midnight by default)."""

    def __post_init__(self) -> None:
        self.total = _whole(self.total)
        self.utc_offset_hours = int(self.utc_offset_hours)


class Document(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A site's scoring rules (``ashiato scoring load``; ``PUT /api/v1/scoring/rules``)."""

    rule: Annotated[list[Rule], Meta(max_length=MAX_RULES)] = []
    grades: Grades = msgspec.field(default_factory=Grades)
    decay: Decay = msgspec.field(default_factory=Decay)
    fit_grades: FitGrades = msgspec.field(default_factory=FitGrades)
    caps: Caps = msgspec.field(default_factory=Caps)
    group: dict[RuleId, Group] = {}

    def __post_init__(self) -> None:
        check(self)


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def check(doc: Document) -> None:
    """What the Struct types alone cannot say (raised as ValueError: msgspec names it)."""
    g = doc.grades
    if not g.warm <= g.rearm_below < g.hot:
        raise ValueError("grades must satisfy warm <= rearm_below < hot")
    f = doc.fit_grades
    if not f.c <= f.b <= f.a:
        raise ValueError("fit_grades must satisfy c <= b <= a")
    seen: set[str] = set()
    for rule in doc.rule:
        if rule.id in seen or rule.id == "manual":
            raise ValueError(f"rule id {rule.id!r} is repeated or reserved")
        seen.add(rule.id)
        _check_when(rule)


def _check_when(rule: Rule) -> None:
    w = rule.when
    event_keys = (w.type, w.path, w.name, w.props)
    trait_keys = (w.in_, w.not_in, w.contains, w.exists)
    if w.trait is not None and w.touch is not None:
        raise ValueError(f"rule {rule.id!r}: `trait` and `touch` cannot be combined")
    if w.on_lead and any(k is not None for k in event_keys):
        raise ValueError(f"rule {rule.id!r}: a trait or touch rule cannot match event keys")
    if (w.trait is None) == any(k is not None for k in trait_keys):
        if w.trait is None:
            raise ValueError(f"rule {rule.id!r}: in/not_in/contains/exists need `trait`")
        raise ValueError(f"rule {rule.id!r}: `trait` needs in, not_in, contains or exists")
    if w.trait is not None and (w.utm_source or w.utm_medium or w.utm_campaign or w.referrer_host):
        raise ValueError(f"rule {rule.id!r}: a trait rule cannot match touch keys")


def parse(text: str, *, format: Literal["toml", "json"] = "toml") -> Document:
    """The checked document in ``text``; InvalidRules naming what is wrong."""
    try:
        data = tomllib.loads(text) if format == "toml" else msgspec.json.decode(text)
    except (tomllib.TOMLDecodeError, msgspec.DecodeError) as exc:
        raise InvalidRules(f"not valid {format.upper()}: {exc}") from None
    return from_data(data)


def from_data(data: object) -> Document:
    try:
        doc = msgspec.convert(data, Document)
    except msgspec.ValidationError as exc:
        raise InvalidRules(str(exc)) from None
    if b"\\u0000" in msgspec.json.encode(doc):  # PostgreSQL text cannot hold it
        raise InvalidRules("text must not contain NUL (U+0000) characters")
    return doc


def to_data(doc: Document) -> dict[str, object]:
    """The document as plain JSON data (what is stored and what GET answers)."""
    return msgspec.to_builtins(doc)  # type: ignore[no-any-return]
