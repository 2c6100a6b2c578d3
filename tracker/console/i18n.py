"""Japanese and English for the console: Babel catalogs, times in the user's zone.

English is the source language (the msgids); ``locale/ja/LC_MESSAGES/console.po`` holds
the Japanese. The ``.po`` files are compiled in memory when first needed, so a fresh
clone needs no build step and no compiled file is committed.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = {"ja": "日本語", "en": "English"}
DAY_MS = 86_400_000


@cache
def translations(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    source = resources.files("tracker.console") / "locale" / language / "LC_MESSAGES"
    with (source / "console.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def gettext_for(language: str) -> gettext.NullTranslations:
    return translations(language if language in LANGUAGES else "ja")


@cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Tokyo")


def valid_zone(name: str) -> bool:
    return name in _zones()


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class Clock:
    """Times for one user: their zone and language; never epoch numbers on a page."""

    def __init__(self, language: str, zone_name: str, now_ms: int) -> None:
        self.language = language if language in LANGUAGES else "ja"
        self.zone = zone(zone_name)
        self.now_ms = now_ms

    def when(self, ms: int | None) -> str:
        if ms is None:
            return "—"
        at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        return format_datetime(at, "yyyy-MM-dd HH:mm zzz", tzinfo=self.zone, locale=self.language)

    def iso(self, ms: int) -> str:
        """For ``<time datetime=…>``."""
        return dt.datetime.fromtimestamp(ms / 1000, self.zone).isoformat(timespec="seconds")

    def days_until(self, ms: int) -> int:
        """Whole calendar days from today to ``ms``'s day, in the user's zone (negative:
        past)."""
        today = dt.datetime.fromtimestamp(self.now_ms / 1000, self.zone).date()
        day = dt.datetime.fromtimestamp(ms / 1000, self.zone).date()
        return (day - today).days

    def start_of_today(self) -> int:
        now = dt.datetime.fromtimestamp(self.now_ms / 1000, self.zone)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp() * 1000)
