"""The keyring: the master key file's contents (KEKs, the primary one, index and audit
keys) and its JSON text format. No I/O here: see :mod:`privacy.crypto.keyfile`."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from privacy.crypto.primitives import KEY_BYTES, is_key_id, new_key, new_key_id, sign
from tracker.errors import ConfigError

_FIELDS = {"ashiato_keyring", "primary", "keks", "index_key", "audit_key"}


class KeyConfigError(ConfigError):
    """The master key is missing, malformed or unsafely stored (never shows key material)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _unb64(value: object, name: str) -> bytes:
    error = KeyConfigError(f"master key: {name} must be {KEY_BYTES} bytes in base64url")
    if not isinstance(value, str):
        raise error
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise error from None
    if len(raw) != KEY_BYTES:
        raise error
    return raw


@dataclass(frozen=True, slots=True)
class Keyring:
    """The master key file's contents. Its repr shows KEK ids only, never keys."""

    primary: str
    """The KEK that wraps new data keys (and every key, once a rotation is done)."""
    keks: Mapping[str, bytes] = field(repr=False)
    index_key: bytes = field(repr=False)
    audit_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keks", MappingProxyType(dict(self.keks)))
        if not all(is_key_id(k) for k in self.keks):
            raise KeyConfigError(
                "master key: keks: every KEK id must be 16 lowercase hex characters"
            )
        if self.primary not in self.keks:
            raise KeyConfigError("master key: primary must be the id of one of keks")
        named = [(f"keks[{k}]", v) for k, v in self.keks.items()]
        for name, key in (*named, ("index_key", self.index_key), ("audit_key", self.audit_key)):
            if len(key) != KEY_BYTES:
                raise KeyConfigError(f"master key: {name} must be {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> Keyring:
        kek_id = new_key_id()
        return cls(kek_id, {kek_id: new_key()}, new_key(), new_key())

    @property
    def fingerprint(self) -> bytes:
        """Names this master key without revealing it. Index and audit keys are never
        rotated, so every version of one key file has the same fingerprint."""
        return sign(self.audit_key, b"ashiato-keyring-fingerprint-v1" + self.index_key)

    def with_new_primary(self) -> Keyring:
        """A fresh KEK, made primary; the old ones stay until retired."""
        kek_id = new_key_id()
        while kek_id in self.keks:
            kek_id = new_key_id()
        keks = {**self.keks, kek_id: new_key()}
        return Keyring(kek_id, keks, self.index_key, self.audit_key)

    def without(self, kek_id: str) -> Keyring:
        if kek_id == self.primary:
            raise KeyConfigError(f"KEK {kek_id} is the primary one and cannot be removed")
        if kek_id not in self.keks:
            raise KeyConfigError(f"no KEK {kek_id} in the key file")
        keks = {k: v for k, v in self.keks.items() if k != kek_id}
        return Keyring(self.primary, keks, self.index_key, self.audit_key)

    def to_text(self) -> str:
        document = {
            "ashiato_keyring": 1,
            "primary": self.primary,
            "keks": {k: _b64(v) for k, v in self.keks.items()},
            "index_key": _b64(self.index_key),
            "audit_key": _b64(self.audit_key),
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        """Parse and check a keyring; errors name the bad field, never its value."""
        doc = _document(text)
        keks = doc["keks"]
        return cls(
            primary=doc["primary"],
            keks={k: _unb64(v, f"keks[{k}]") for k, v in keks.items()},
            index_key=_unb64(doc.get("index_key"), "index_key"),
            audit_key=_unb64(doc.get("audit_key"), "audit_key"),
        )


def _document(text: str) -> dict[str, Any]:
    """The keyring's JSON object, its shape, KEK ids and primary checked."""
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise KeyConfigError("master key: not a JSON keyring document") from None
    if not isinstance(doc, dict) or doc.get("ashiato_keyring") != 1:
        raise KeyConfigError("master key: expected a JSON object with ashiato_keyring: 1")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise KeyConfigError(f"master key: unknown field(s) {', '.join(unknown)}")
    keks = doc.get("keks")
    if not isinstance(keks, dict) or not keks:
        raise KeyConfigError("master key: keks must be a non-empty object of id: key")
    if not all(isinstance(k, str) and is_key_id(k) for k in keks):
        raise KeyConfigError("master key: keks: every KEK id must be 16 lowercase hex characters")
    if not isinstance(doc.get("primary"), str) or doc["primary"] not in keks:
        raise KeyConfigError("master key: primary must be the id of one of keks")
    return doc
