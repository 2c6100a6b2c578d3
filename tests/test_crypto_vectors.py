"""Known-answer vectors for privacy.crypto: they pin the on-disk format.

The hex below was computed once, from the implementation as it stood before
``privacy/crypto.py`` became a package (with its nonce fixed), so it is today's format:
blobs already in databases and key stores. A change that breaks one of these tests makes
existing data unreadable. Each vector is also recomputed here from the ``cryptography``
primitives called directly, following the format written out by hand.
"""

from __future__ import annotations

import base64
import inspect
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from privacy.crypto.datakeys import DataKey, open_field, seal_field, unwrap_key, wrap_key
from privacy.crypto.keyring import Keyring
from privacy.crypto.primitives import (
    _seal_from_parts,
    blind_index,
    field_context,
    key_context,
    open_key,
    seal,
    seal_key,
    sign,
    unseal,
)
from tracker.storage.keystore import WrappedKey

NONCE = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaab")
KEY, KEY_ID = bytes(range(32)), "00112233445566ff"
KEK, KEK_ID = bytes(range(32, 64)), "0f1e2d3c4b5a6978"
INDEX_KEY, AUDIT_KEY = bytes(range(64, 96)), bytes(range(96, 128))
DEK, DEK_ID = bytes(range(128, 160)), "8899aabbccddeeff"
KEYRING = Keyring(KEK_ID, {KEK_ID: KEK}, INDEX_KEY, AUDIT_KEY)

FIELD_AD_HEX = "6173686961746f2d6669656c642d7631000000056c6561647300000005656d61696c000000023432"
SEALED_HEX = (
    "0100112233445566ffa0a1a2a3a4a5a6a7a8a9aaab"
    "0062450ff6d39e749b54326a7709afcb86665d03b56d8496c87f9c4a0bb7bf"
)
SEALED_EMPTY_HEX = "0100112233445566ffa0a1a2a3a4a5a6a7a8a9aaab96334a80b24c23d75136a7a0c2fa9a47"
WRAPPED_HEX = (
    "010f1e2d3c4b5a6978a0a1a2a3a4a5a6a7a8a9aaab"
    "21c1042ac9f4a92ed993338874566dc74c0240126a7c878a"
    "684a34a3d4c71a777e6443929348bf5a758d0559bc57c479"
)
FIELD_HEX = (
    "018899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaab"
    "2b1b1da8c39e81599e7e5a9eef6e35bff9fad85d9d6ea67ea3e95d79"
)
BLIND_INDEX_HEX = "c2be2b4d066b779d83fa8d3e128a5f5efd5e03a4aef84231cef9c2281c53b67c"
AUDIT_MAC_HEX = "b4f017c126680b58fcb2f7ad7530c1dec9f8c8e7298b4cee6fc62b05e2b4e07e"
FINGERPRINT_HEX = "00cdb12a5db8ba5671d7dee48126e809629a5d43219ca3cacb7e1f9e6d94dc4f"
KEYRING_TEXT = """{
  "ashiato_keyring": 1,
  "primary": "0f1e2d3c4b5a6978",
  "keks": {
    "0f1e2d3c4b5a6978": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
  },
  "index_key": "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=",
  "audit_key": "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="
}
"""


def header(key_id: str) -> bytes:
    return b"\x01" + bytes.fromhex(key_id)  # version 1, then the key id's 8 bytes


def prefixed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def direct_seal(key: bytes, key_id: str, plaintext: bytes, associated: bytes) -> bytes:
    body = AESGCMSIV(key).encrypt(NONCE, plaintext, header(key_id) + associated)
    return header(key_id) + NONCE + body


def direct_hmac(key: bytes, message: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def test_field_context_vector() -> None:
    expected = b"ashiato-field-v1" + prefixed(b"leads", b"email", b"42")
    assert field_context("leads", "email", "42").hex() == FIELD_AD_HEX == expected.hex()
    assert key_context(DEK_ID) == b"ashiato-dek-v1" + prefixed(DEK_ID.encode())


@pytest.mark.parametrize(
    ("plaintext", "sealed_hex"), [(b"taro@example.jp", SEALED_HEX), (b"", SEALED_EMPTY_HEX)]
)
def test_seal_vector(plaintext: bytes, sealed_hex: str) -> None:
    ad = bytes.fromhex(FIELD_AD_HEX)
    assert _seal_from_parts(KEY, KEY_ID, plaintext, ad, NONCE).hex() == sealed_hex
    assert direct_seal(KEY, KEY_ID, plaintext, ad).hex() == sealed_hex
    assert unseal(KEY, KEY_ID, bytes.fromhex(sealed_hex), ad) == plaintext


def test_key_wrap_vector() -> None:
    wrapped = bytes.fromhex(WRAPPED_HEX)
    assert _seal_from_parts(KEK, KEK_ID, DEK, key_context(DEK_ID), NONCE) == wrapped
    ad = b"ashiato-dek-v1" + prefixed(DEK_ID.encode())
    assert direct_seal(KEK, KEK_ID, DEK, ad) == wrapped
    assert open_key(KEK, KEK_ID, DEK_ID, wrapped) == DEK
    record = WrappedKey(id=DEK_ID, kek_id=KEK_ID, wrapped=wrapped, created_at=0)
    assert unwrap_key(KEYRING, record) == DataKey(DEK_ID, DEK)
    rewrapped = wrap_key(KEYRING, DataKey(DEK_ID, DEK), created_at=0)  # a random nonce
    assert open_key(KEK, KEK_ID, DEK_ID, rewrapped.wrapped) == DEK


def test_field_vector() -> None:
    blob = bytes.fromhex(FIELD_HEX)
    ad = b"ashiato-field-v1" + prefixed(b"leads", b"name", b"7")
    assert direct_seal(DEK, DEK_ID, "山田太郎".encode(), ad) == blob
    assert open_field(DataKey(DEK_ID, DEK), "leads", "name", "7", blob) == "山田太郎"


def test_blind_index_and_mac_vectors() -> None:
    full_width = blind_index(INDEX_KEY, "ＴＡＲＯ＠ＥＸＡＭＰＬＥ．ＪＰ")
    assert full_width.hex() == BLIND_INDEX_HEX
    assert direct_hmac(INDEX_KEY, b"taro@example.jp").hex() == BLIND_INDEX_HEX
    assert sign(AUDIT_KEY, b"audit entry 1").hex() == AUDIT_MAC_HEX
    assert direct_hmac(AUDIT_KEY, b"audit entry 1").hex() == AUDIT_MAC_HEX


def test_keyring_vectors() -> None:
    assert KEYRING.to_text() == KEYRING_TEXT
    assert Keyring.from_text(KEYRING_TEXT) == KEYRING
    document = json.loads(KEYRING_TEXT)
    assert base64.urlsafe_b64decode(document["keks"][KEK_ID]) == KEK
    assert KEYRING.fingerprint.hex() == FINGERPRINT_HEX
    label = b"ashiato-keyring-fingerprint-v1"
    assert direct_hmac(AUDIT_KEY, label + INDEX_KEY).hex() == FINGERPRINT_HEX


@pytest.mark.parametrize("sealer", [seal, seal_key, seal_field])
def test_the_public_api_takes_no_nonce(sealer: object) -> None:
    assert callable(sealer)
    assert not any("nonce" in name for name in inspect.signature(sealer).parameters)
