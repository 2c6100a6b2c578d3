"""The primitives: the only module that imports ``cryptography``. One opaque error.

Ciphertext: ``version (1) | key id (8) | nonce (12) | ciphertext + tag (16)``, sealed with
AES-256-GCM-SIV. Version and key id are authenticated with the caller's associated data.
Anything wrong with a ciphertext raises :class:`InvalidCiphertext` and nothing else, with
one message. Data keys are wrapped (sealed the same way) bound to their own id; the blind
index and every MAC are HMAC-SHA256. Keys are random (``os.urandom``), never derived,
but for the key of 名寄せ match keys (:func:`match_index_key`, an HMAC of the index key).

The public API never takes a nonce; :func:`_seal_from_parts` does, for known-answer tests
only (as Fernet's ``_encrypt_from_parts``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from tracker.errors import AshiatoError

VERSION = 1
KEY_BYTES = 32
_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = 1 + _ID_BYTES
_ID_PATTERN = re.compile(r"[0-9a-f]{16}")


class InvalidCiphertext(AshiatoError):
    """A ciphertext is corrupt, moved, truncated, or its key is unknown or destroyed."""

    def __init__(self) -> None:
        super().__init__("invalid ciphertext")


# -- keys and key ids -------------------------------------------------------------------


def new_key() -> bytes:
    """A fresh random 32-byte key (KEK, DEK, index or audit key)."""
    return os.urandom(KEY_BYTES)


def new_key_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def is_key_id(value: str) -> bool:
    return _ID_PATTERN.fullmatch(value) is not None


def _id_bytes(key_id: str) -> bytes:
    if not is_key_id(key_id):
        raise ValueError("a key id is 16 lowercase hex characters")
    return bytes.fromhex(key_id)


# -- sealing ------------------------------------------------------------------------------


def _cipher(key: bytes) -> AESGCMSIV:
    if len(key) != KEY_BYTES:
        raise ValueError("keys are 32 bytes")
    return AESGCMSIV(key)


def seal(key: bytes, key_id: str, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``; ``associated`` is bound but not stored."""
    return _seal_from_parts(key, key_id, plaintext, associated, os.urandom(_NONCE_BYTES))


def _seal_from_parts(
    key: bytes, key_id: str, plaintext: bytes, associated: bytes, nonce: bytes
) -> bytes:
    if len(nonce) != _NONCE_BYTES:
        raise ValueError("nonces are 12 bytes")
    header = bytes([VERSION]) + _id_bytes(key_id)
    # The header has a fixed length, so header + associated is unambiguous.
    return header + nonce + _cipher(key).encrypt(nonce, plaintext, header + associated)


def unseal(key: bytes, key_id: str, blob: bytes, associated: bytes) -> bytes:
    """The plaintext of a :func:`seal` output, or InvalidCiphertext."""
    header, nonce = blob[:_HEADER_BYTES], blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
    if len(blob) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or header[0] != VERSION:
        raise InvalidCiphertext
    if not hmac.compare_digest(header[1:], _id_bytes(key_id)):
        raise InvalidCiphertext
    body = blob[_HEADER_BYTES + _NONCE_BYTES :]
    try:
        return _cipher(key).decrypt(nonce, body, header + associated)
    except InvalidTag:
        raise InvalidCiphertext from None


def _context(label: bytes, *parts: str) -> bytes:
    # Length-prefixed parts: ("ab", "c") and ("a", "bc") never give the same bytes.
    encoded = [p.encode() for p in parts]
    return label + b"".join(len(p).to_bytes(4, "big") + p for p in encoded)


def field_context(table: str, column: str, row_id: str) -> bytes:
    """Associated data binding a field's ciphertext to its table, column and row."""
    return _context(b"ashiato-field-v1", table, column, row_id)


def key_context(key_id: str) -> bytes:
    """Associated data binding a wrapped data key to its own id (no swapping rows)."""
    return _context(b"ashiato-dek-v1", key_id)


# -- key wrapping -------------------------------------------------------------------------


def seal_key(kek: bytes, kek_id: str, key_id: str, key: bytes) -> bytes:
    """The data key ``key`` (id ``key_id``) wrapped by ``kek``."""
    return seal(kek, kek_id, key, key_context(key_id))


def open_key(kek: bytes, kek_id: str, key_id: str, wrapped: bytes) -> bytes:
    """The data key in ``wrapped``, or InvalidCiphertext (also for a key of a bad size)."""
    key = unseal(kek, kek_id, wrapped, key_context(key_id))
    if len(key) != KEY_BYTES:
        raise InvalidCiphertext
    return key


# -- MACs and the blind index -------------------------------------------------------------


def sign(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` (32 bytes)."""
    return hmac.new(key, message, hashlib.sha256).digest()


def verify(key: bytes, message: bytes, mac: bytes) -> bool:
    """Whether ``mac`` is ``message``'s HMAC-SHA256, compared in constant time."""
    return hmac.compare_digest(sign(key, message), mac)


def normalise_email(email: str) -> str:
    # NFKC folds the full-width forms Japanese IMEs produce ('ＴＡＲＯ＠ＥＸＡＭＰＬＥ．ＪＰ').
    return unicodedata.normalize("NFKC", email).strip().lower()


def blind_index(index_key: bytes, email: str) -> bytes:
    """A keyed, deterministic lookup value for an email: equal emails, equal indexes."""
    return sign(index_key, normalise_email(email).encode())


def match_index_key(index_key: bytes) -> bytes:
    """The key of 名寄せ match keys, derived from the index key (HMAC as a PRF), so a
    match key never equals, nor can be tested against, an email's lookup index."""
    return sign(index_key, b"ashiato-match-key-v1")


def match_index(match_key: bytes, kind: str, value: str) -> bytes:
    """A keyed, deterministic value for one normalised trait: equal values of one kind,
    equal indexes (``match_key`` from :func:`match_index_key`)."""
    return sign(match_key, _context(b"ashiato-match-v1", kind, value))
