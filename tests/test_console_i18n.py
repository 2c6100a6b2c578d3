"""The console's Japanese catalog covers every text the templates show, keeps their
placeholders, and times are shown in the user's zone, never as epoch numbers."""

from __future__ import annotations

import re
from importlib import resources

from babel.messages.pofile import read_po

from tracker.console.i18n import Clock, gettext_for

TEMPLATES = resources.files("tracker.console") / "templates"
CATALOG = resources.files("tracker.console") / "locale" / "ja" / "LC_MESSAGES" / "console.po"
LITERAL = re.compile(r'\b_\("([^"]+)"\)')
PLACEHOLDER = re.compile(r"%\(\w+\)[ds]")
DAY_MS = 86_400_000


def template_texts() -> set[str]:
    return {text for item in TEMPLATES.iterdir() if item.name.endswith(".html")
            for text in LITERAL.findall(item.read_text(encoding="utf-8"))}  # fmt: skip


def test_every_template_text_has_a_japanese_translation_with_its_placeholders() -> None:
    with CATALOG.open("rb") as po:
        catalog = read_po(po, locale="ja")
    translated = {m.id: m.string for m in catalog if m.id and isinstance(m.id, str)}
    texts = template_texts()
    assert len(texts) > 150  # the pattern found the templates' texts
    missing = sorted(t for t in texts if not translated.get(t))
    assert missing == []
    for text in texts:
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(translated[text]))
    japanese = gettext_for("ja")
    assert japanese.gettext("Sign in") == "サインイン"
    assert japanese.ngettext("%(num)d failed delivery", "%(num)d failed deliveries", 2) == (
        "%(num)d件の配信失敗"
    )
    assert gettext_for("en").gettext("Sign in") == "Sign in"
    assert gettext_for("xx").gettext("Sign in") == "サインイン"  # unknown: the default


def test_times_are_local_to_the_user_and_never_epoch_numbers() -> None:
    at = 1_796_000_000_000  # 2026-11-30 00:53:20 UTC
    tokyo = Clock("ja", "Asia/Tokyo", now_ms=at)
    assert tokyo.when(at) == "2026-11-30 09:53 JST"
    assert Clock("en", "America/New_York", now_ms=at).when(at) == "2026-11-29 19:53 EST"
    assert tokyo.when(None) == "—"
    assert tokyo.iso(at) == "2026-11-30T09:53:20+09:00"
    assert tokyo.days_until(at + 3 * DAY_MS) == 3
    assert tokyo.days_until(at - DAY_MS) == -1
    assert tokyo.start_of_today() == 1_795_964_400_000  # 2026-11-30 00:00 JST
    assert Clock("ja", "Not/AZone", now_ms=at).when(at) == tokyo.when(at)  # falls back
