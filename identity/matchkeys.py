"""名寄せ match keys: what two records of one person or company have in common.

Pure normalisers. Each turns a trait into the form two spellings of the same thing
share, so equal keys mean "the same, written differently":

* email: NFKC, trimmed, lower-case, without a ``+tag`` sub-address
  (``ＴＡＲＯ+news@Example.jp`` is ``taro@example.jp``);
* phone: E.164 with region JP (``03-1234-5678``, ``+81 3 1234 5678`` and
  ``０３(1234)5678`` are ``+81312345678``), extensions (``内線``) dropped;
* person name, and its reading (furigana) when the form has one: NFKC (full-width
  letters and half-width kana), 異体字 folded (``髙橋`` is ``高橋``), katakana as
  hiragana, lower-case, spaces, punctuation and long-vowel marks removed; a name of
  several words also gives its words in sorted order (``Yamada Taro`` = ``Taro Yamada``);
* company: the same, with legal forms removed wherever they stand (``株式会社``, ``㈱``,
  ``(株)``, ``有限会社``, ``合同会社``, …; ``Co., Ltd.``, ``K.K.``, ``Inc.``, … at the
  ends), so ``株式会社アシアト`` is ``ｱｼｱﾄ(株)``;
* email domain, except free-mail domains (they say nothing about a company).

Nothing here is stored as it is: ``privacy.personal.PersonalData.match_index`` turns
each (kind, value) into a keyed HMAC, a blind index like the email's.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping

import jaconv
import phonenumbers

from privacy.personal import Person

VERSION = 1
"""Raised whenever a normaliser changes: keys of an older version are computed again."""


class Kind(enum.StrEnum):
    """What a match key is of (stored beside its value)."""

    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    KANA = "kana"
    COMPANY = "company"
    DOMAIN = "domain"


_VARIANTS = {
    "髙": "高", "﨑": "崎", "嵜": "崎", "碕": "崎", "齋": "斎", "齊": "斎", "斉": "斎",
    "邊": "辺", "邉": "辺", "澤": "沢", "濱": "浜", "濵": "浜", "嶋": "島", "嶌": "島",
    "國": "国", "櫻": "桜", "廣": "広", "冨": "富", "眞": "真", "實": "実", "惠": "恵",
    "德": "徳", "龍": "竜", "瀨": "瀬", "槇": "槙", "藏": "蔵", "關": "関", "會": "会",
    "學": "学", "團": "団", "萬": "万", "壽": "寿", "淺": "浅", "增": "増", "條": "条",
    "圓": "円", "黑": "黒", "舘": "館", "峯": "峰", "嶽": "岳", "𠮷": "吉",
    "ヶ": "ケ", "ヵ": "カ", "ゖ": "け", "ゕ": "か",
}  # fmt: skip
"""異体字 (variant characters) folded to their common form: the old and variant forms
that family and company names keep (NFKC leaves these alone)."""
_FOLD = str.maketrans(_VARIANTS)
_DROPPED = re.compile(r"[\s\u30fc\u2010-\u2015\u2212\uff70~〜・･]+")
"""Spaces, long-vowel marks and dashes (often typed one for another), middle dots."""

_JA_FORMS = (
    "特定非営利活動法人", "地方独立行政法人", "有限責任事業組合", "独立行政法人",
    "国立大学法人", "一般社団法人", "一般財団法人", "公益社団法人", "公益財団法人",
    "社会福祉法人", "医療法人社団", "医療法人財団", "医療法人", "学校法人", "宗教法人",
    "npo法人", "株式会社", "有限会社", "合同会社", "合名会社", "合資会社", "相互会社",
    "(株)", "(有)", "(同)", "(合)", "(資)", "(名)", "(社)", "(財)", "(医)", "(学)",
    "(特非)", "(一社)", "(一財)", "(公社)", "(公財)", "(独)",
)  # fmt: skip
"""After NFKC (``㈱`` and ``（株）`` are ``(株)``, ``㍿`` is ``株式会社``), longest first."""
_EN_FORMS = tuple(
    tuple(form.split())
    for form in (
        "co ltd", "company limited", "kabushiki kaisha", "k k", "kk", "godo kaisha", "g k",
        "gk", "yugen kaisha", "y k", "l l c", "llc", "llp", "inc", "incorporated", "corp",
        "corporation", "ltd", "limited", "plc", "gmbh", "co",
    )
)  # fmt: skip
"""Latin legal forms as words (``Co., Ltd.`` is ``co ltd`` once dots and commas split)."""
_WORDS = re.compile(r"[\s.,]+")

FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.co.jp", "ymail.ne.jp", "yahoo.com",
    "hotmail.com", "hotmail.co.jp", "outlook.com", "outlook.jp", "live.jp", "live.com",
    "msn.com", "icloud.com", "me.com", "mac.com", "docomo.ne.jp", "ezweb.ne.jp", "au.com",
    "softbank.ne.jp", "i.softbank.jp", "nifty.com", "biglobe.ne.jp", "ocn.ne.jp",
    "so-net.ne.jp", "excite.co.jp", "aol.com", "mail.com", "proton.me", "protonmail.com",
    "gmx.com", "zoho.com",
})  # fmt: skip
"""Domains anyone can have an address at: no evidence of a shared company."""

NAME_FIELDS = ("full_name", "fullname", "氏名", "お名前", "名前")
NAME_PARTS = (("last_name", "first_name"), ("lastname", "firstname"), ("姓", "名"))
KANA_FIELDS = ("furigana", "kana", "name_kana", "kana_name", "yomi", "reading",
               "フリガナ", "ふりがな", "氏名カナ", "セイメイ")  # fmt: skip
KANA_PARTS = (("last_name_kana", "first_name_kana"), ("lastname_kana", "firstname_kana"),
              ("kana_last_name", "kana_first_name"), ("セイ", "メイ"))  # fmt: skip
COMPANY_FIELDS = ("organization", "organisation", "company_name", "会社名", "企業名")
PHONE_FIELDS = ("tel", "mobile", "mobile_phone", "cellphone", "phone_number", "電話番号",
                "携帯電話")  # fmt: skip


def fold(text: str) -> str:
    """The shared form of a name: NFKC, 異体字, hiragana, lower-case, nothing between."""
    folded = jaconv.kata2hira(unicodedata.normalize("NFKC", text).translate(_FOLD))
    folded = _DROPPED.sub("", folded.casefold())
    return "".join(c for c in folded if not unicodedata.category(c).startswith(("P", "C", "Z")))


def email_key(email: str) -> str | None:
    address = unicodedata.normalize("NFKC", email).strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    return f"{local.split('+', 1)[0] or local}@{domain}"


def email_domain(email: str) -> str | None:
    """The email's domain, or None for free mail (and for what is not an address)."""
    key = email_key(email)
    domain = key.rpartition("@")[2].rstrip(".") if key else ""
    return domain if domain and domain not in FREE_MAIL else None


def phone_key(phone: str) -> str | None:
    """E.164, reading a number without a country code as Japanese; None if not one."""
    text = unicodedata.normalize("NFKC", phone).replace("内線", " ext. ")
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def name_keys(name: str) -> set[str]:
    """The folded name, and its words in sorted order when it has several."""
    keys = {fold(name)}
    words = [fold(w) for w in unicodedata.normalize("NFKC", name).split()]
    if len([w for w in words if w]) > 1:
        keys.add("".join(sorted(w for w in words if w)))
    return {k for k in keys if len(k) > 1}


def is_kana(folded: str) -> bool:
    """Hiragana only (after ``fold``): a name written as its reading."""
    return bool(folded) and all("\u3041" <= c <= "\u309f" for c in folded)


def company_key(company: str) -> str | None:
    text = unicodedata.normalize("NFKC", company).translate(_FOLD).casefold()
    for form in _JA_FORMS:
        text = text.replace(form, " ")
    words = [w for w in _WORDS.split(text) if w]
    while words and words[0] == "the":
        words.pop(0)
    words = _strip_forms(words)
    key = fold(" ".join(words))
    return key or None


def _strip_forms(words: list[str]) -> list[str]:
    """Latin legal forms cut off both ends, as often as they stand there."""
    changed = True
    while changed and words:
        changed = False
        for form in _EN_FORMS:
            n = len(form)
            if len(words) >= n and tuple(words[-n:]) == form:
                words, changed = words[:-n], True
            elif len(words) >= n and tuple(words[:n]) == form:
                words, changed = words[n:], True
    return words


def _first(fields: Mapping[str, str], names: Iterable[str]) -> str | None:
    return next((fields[n] for n in names if fields.get(n)), None)


def _joined(fields: Mapping[str, str], pairs: Iterable[tuple[str, str]]) -> str | None:
    for last, first in pairs:
        if fields.get(last) or fields.get(first):
            return f"{fields.get(last, '')} {fields.get(first, '')}"
    return None


def match_values(person: Person) -> set[tuple[Kind, str]]:
    """Every (kind, normalised value) of a lead's traits: what ``match_index`` keys."""
    fields = person.fields
    values: set[tuple[Kind, str]] = set()
    # Always one key at least (what is stored marks the lead as keyed), even for an
    # address email_key cannot read.
    email = email_key(person.email) or unicodedata.normalize("NFKC", person.email).strip()
    values.add((Kind.EMAIL, email.lower()))
    if domain := email_domain(person.email):
        values.add((Kind.DOMAIN, domain))
    for raw in (person.phone, *(fields.get(f) for f in PHONE_FIELDS)):
        if raw and (phone := phone_key(raw)):
            values.add((Kind.PHONE, phone))
    name = person.name or _first(fields, NAME_FIELDS) or _joined(fields, NAME_PARTS)
    for key in name_keys(name) if name else set():
        # A name written in kana is its reading: compared with readings, not with names
        # in kanji (山田太郎 and やまだたろう are not two different names).
        values.add((Kind.KANA if is_kana(key) else Kind.NAME, key))
    kana = _first(fields, KANA_FIELDS) or _joined(fields, KANA_PARTS)
    if kana and len(reading := fold(kana)) > 1:
        values.add((Kind.KANA, reading))
    company = person.company or _first(fields, COMPANY_FIELDS)
    if company and (folded := company_key(company)):
        values.add((Kind.COMPANY, folded))
    return values
