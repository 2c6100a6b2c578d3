"""privacy.crypto: sealing, the one opaque error, keyrings, key files, data keys."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from privacy.crypto.datakeys import DataKey, DataKeys, open_field, seal_field
from privacy.crypto.keyfile import KeyringSource, load_keyring, read_key_file, write_key_file
from privacy.crypto.keyring import KeyConfigError, Keyring
from privacy.crypto.primitives import (
    InvalidCiphertext,
    blind_index,
    field_context,
    seal,
    sign,
    unseal,
    verify,
)
from tracker.errors import Conflict
from tracker.storage.keystore import WrappedKey
from tracker.storage.sqlite.keystore import SQLiteKeyStore

KEY = bytes(range(32))
KEY_ID = "00112233445566ff"
AD = field_context("leads", "email", "42")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def keystore(tmp_path: Path) -> AsyncIterator[SQLiteKeyStore]:
    store = SQLiteKeyStore(tmp_path / "keys" / "keystore.db")
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def source(tmp_path: Path) -> KeyringSource:
    path = tmp_path / "keys" / "master.key"
    write_key_file(path, Keyring.generate())
    return KeyringSource(read_key_file(path), path=path)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    # With umask 0 a file created 0666 and chmodded later would show it; 0600 must hold.
    old = os.umask(0)
    yield
    os.umask(old)


def invalid(blob: bytes, *, key: bytes = KEY, key_id: str = KEY_ID, ad: bytes = AD) -> None:
    with pytest.raises(InvalidCiphertext) as caught:
        unseal(key, key_id, blob, ad)
    assert type(caught.value) is InvalidCiphertext
    assert str(caught.value) == "invalid ciphertext"


# -- sealing ----------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [b"", b"taro@example.jp", "山田太郎".encode() * 1000])
def test_round_trip(plaintext: bytes) -> None:
    blob = seal(KEY, KEY_ID, plaintext, AD)
    assert blob[0] == 1
    assert blob[1:9] == bytes.fromhex(KEY_ID)
    assert len(blob) == 1 + 8 + 12 + len(plaintext) + 16
    assert unseal(KEY, KEY_ID, blob, AD) == plaintext


def test_nonces_are_random() -> None:
    assert seal(KEY, KEY_ID, b"same", AD) != seal(KEY, KEY_ID, b"same", AD)


@pytest.mark.parametrize(
    "position",
    [0, 1, 8, 9, 20, 21, 25, -17, -16, -1],
    ids=["version", "id-first", "id-last", "nonce-first", "nonce-last", "body-first",
         "body", "body-last", "tag-first", "tag-last"],
)  # fmt: skip
def test_any_flipped_bit_is_invalid(position: int) -> None:
    blob = bytearray(seal(KEY, KEY_ID, b"a secret value", AD))
    for bit in range(8):
        tampered = bytearray(blob)
        tampered[position] ^= 1 << bit
        invalid(bytes(tampered))


def test_truncated_is_invalid() -> None:
    blob = seal(KEY, KEY_ID, b"a secret value", AD)
    for length in range(len(blob)):
        invalid(blob[:length])
    invalid(blob + b"\0")


@pytest.mark.parametrize(
    "moved",
    [
        field_context("leads", "email", "43"),  # another row
        field_context("leads", "phone", "42"),  # another column
        field_context("contacts", "email", "42"),  # another table
        field_context("leads", "emai", "l42"),  # a shifted boundary
        b"",
    ],
)
def test_moved_value_is_invalid(moved: bytes) -> None:
    invalid(seal(KEY, KEY_ID, b"taro@example.jp", AD), ad=moved)


def test_field_context_is_unambiguous() -> None:
    assert field_context("ab", "c", "1") != field_context("a", "bc", "1")
    assert field_context("a", "b", "") != field_context("a", "", "b")


def test_other_key_or_key_id_is_invalid() -> None:
    blob = seal(KEY, KEY_ID, b"x", AD)
    invalid(blob, key=bytes(32))
    invalid(blob, key_id="00112233445566fe")


@pytest.mark.parametrize("version", [0, 2, 255])
def test_changed_version_is_invalid(version: int) -> None:
    blob = bytearray(seal(KEY, KEY_ID, b"x", AD))
    blob[0] = version
    invalid(bytes(blob))


def test_no_plaintext_fallback() -> None:
    invalid(b"taro@example.jp")
    invalid(b"\x01" + b"taro@example.jp" * 3)


# -- blind index and MACs ---------------------------------------------------------


def test_blind_index_normalises_full_width_email() -> None:
    index_key = os.urandom(32)
    ascii_lower = blind_index(index_key, "taro@example.jp")
    assert blind_index(index_key, "ＴＡＲＯ＠ＥＸＡＭＰＬＥ．ＪＰ") == ascii_lower
    assert blind_index(index_key, "  Taro@Example.JP\n") == ascii_lower
    assert len(ascii_lower) == 32
    assert blind_index(os.urandom(32), "taro@example.jp") != ascii_lower
    assert blind_index(index_key, "hanako@example.jp") != ascii_lower


def test_mac_sign_and_verify() -> None:
    mac = sign(KEY, b"audit entry 1")
    assert verify(KEY, b"audit entry 1", mac)
    assert not verify(KEY, b"audit entry 2", mac)
    assert not verify(bytes(32), b"audit entry 1", mac)
    assert not verify(KEY, b"audit entry 1", mac[:-1])


# -- keyring and key files ----------------------------------------------------------


def test_keyring_text_round_trip_and_repr() -> None:
    keyring = Keyring.generate().with_new_primary()
    assert Keyring.from_text(keyring.to_text()) == keyring
    assert len(keyring.keks) == 2
    text = repr(keyring) + repr(DataKey("0" * 16, KEY))
    for secret in (*keyring.keks.values(), keyring.index_key, keyring.audit_key, KEY):
        assert repr(secret) not in text
        assert secret.hex() not in text
    with pytest.raises(KeyConfigError, match="primary"):
        keyring.without(keyring.primary)


def _document() -> dict[str, object]:
    return json.loads(Keyring.generate().to_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ashiato_keyring", 2),
        ("primary", "ffffffffffffffff"),
        ("keks", {}),
        ("keks", {"NOT-AN-ID": "c2VjcmV0LXZhbHVl"}),
        ("index_key", "c2VjcmV0LXZhbHVl"),  # 12 bytes
        ("audit_key", "!!not base64!!"),
        ("audit_key", None),
    ],
)
def test_from_text_names_the_bad_field_never_the_value(field: str, value: object) -> None:
    document = _document()
    document[field] = value
    with pytest.raises(KeyConfigError) as caught:
        Keyring.from_text(json.dumps(document))
    message = str(caught.value)
    assert field in message
    assert "c2VjcmV0" not in message
    assert "not base64" not in message
    assert "ffffffffffffffff" not in message


def test_from_text_rejects_a_short_kek() -> None:
    document = _document()
    keks = document["keks"]
    assert isinstance(keks, dict)
    kek_id = next(iter(keks))
    keks[kek_id] = keks[kek_id][:20]
    with pytest.raises(KeyConfigError, match=rf"keks\[{kek_id}\]"):
        Keyring.from_text(json.dumps(document))
    with pytest.raises(KeyConfigError, match="not a JSON keyring"):
        Keyring.from_text("hunter2")


def test_key_file_is_0600_from_creation(tmp_path: Path, umask_zero: None) -> None:
    path = tmp_path / "secrets" / "master.key"
    keyring = Keyring.generate()
    write_key_file(path, keyring)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert read_key_file(path) == keyring
    assert os.listdir(path.parent) == ["master.key"]  # no temp file left behind


def test_key_file_refuses_overwrite_unless_replace(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first, second = Keyring.generate(), Keyring.generate()
    write_key_file(path, first)
    with pytest.raises(KeyConfigError, match="refusing to overwrite"):
        write_key_file(path, second)
    assert read_key_file(path) == first
    write_key_file(path, second, replace=True)
    assert read_key_file(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_permissions_are_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, Keyring.generate())
    path.chmod(0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        read_key_file(path)
    path.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="ashiato.keys"):
        read_key_file(path)
    assert "readable by its group" in caplog.text
    with pytest.raises(KeyConfigError, match=r"does not exist.*keys init"):
        read_key_file(tmp_path / "missing.key")


def test_load_keyring_sources(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keyring = Keyring.generate()
    write_key_file(path, keyring)
    common = {"dev": False, "dev_key_file": tmp_path / "dev.key", "database_dir": None}
    assert load_keyring(key_file=str(path), key_text="", **common) == keyring  # type: ignore[arg-type]
    assert load_keyring(key_file="", key_text=keyring.to_text(), **common) == keyring  # type: ignore[arg-type]
    with pytest.raises(KeyConfigError, match="no master key: set ASHIATO_MASTER_KEY_FILE"):
        load_keyring(key_file="", key_text="", **common)  # type: ignore[arg-type]
    assert not (tmp_path / "dev.key").exists()


def test_dev_mode_creates_a_key_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dev_key = tmp_path / "keys" / "dev-master.key"
    with caplog.at_level(logging.WARNING, logger="ashiato.keys"):
        first = load_keyring(
            key_file="", key_text="", dev=True, dev_key_file=dev_key, database_dir=tmp_path / "data"
        )
    assert stat.S_IMODE(dev_key.stat().st_mode) == 0o600
    assert "NOT FOR PRODUCTION" in caplog.text
    assert "back it up" in caplog.text
    assert caplog.records[0].name == "ashiato.keys"
    again = load_keyring(
        key_file="", key_text="", dev=True, dev_key_file=dev_key, database_dir=None
    )
    assert again == first


def test_dev_key_refused_inside_the_database_dir(tmp_path: Path) -> None:
    dev_key = tmp_path / "data" / "keys" / "dev-master.key"
    with pytest.raises(KeyConfigError, match="must not be inside"):
        load_keyring(
            key_file="", key_text="", dev=True, dev_key_file=dev_key, database_dir=tmp_path / "data"
        )
    assert not dev_key.exists()


def test_source_reloads_a_changed_file_at_most_every_5_seconds(source: KeyringSource) -> None:
    assert source.path is not None
    assert not source.maybe_reload(1000.0)  # unchanged
    rotated = source.keyring.with_new_primary()
    write_key_file(source.path, rotated, replace=True)
    os.utime(source.path, ns=(1, 1))  # a distinct mtime even on coarse clocks
    assert not source.maybe_reload(1004.0)  # checked less than 5 s ago
    assert source.keyring != rotated
    assert source.maybe_reload(1005.0)
    assert source.keyring == rotated
    assert not source.maybe_reload(1011.0)


# -- data keys ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_data_key_round_trip_and_fresh_process(
    source: KeyringSource, keystore: SQLiteKeyStore
) -> None:
    keys = DataKeys(source, keystore, now=lambda: 1_700_000_000.5)
    dk = await keys.create()
    blob = seal_field(dk, "leads", "email", "7", "taro@example.jp")
    assert open_field(dk, "leads", "email", "7", blob) == "taro@example.jp"
    record = await keystore.get(dk.id)
    assert record is not None
    assert record.created_at == 1_700_000_000_500
    assert record.kek_id == source.keyring.primary
    assert dk.key not in record.wrapped
    fresh = DataKeys(KeyringSource(read_key_file(source.path)), keystore)  # type: ignore[arg-type]
    assert open_field(await fresh.get(dk.id), "leads", "email", "7", blob) == "taro@example.jp"
    with pytest.raises(InvalidCiphertext):
        open_field(dk, "leads", "email", "8", blob)


@pytest.mark.anyio
@pytest.mark.parametrize("key_id", ["0123456789abcdef", "not-a-key-id", ""])
async def test_unknown_data_key_is_invalid(
    source: KeyringSource, keystore: SQLiteKeyStore, key_id: str
) -> None:
    with pytest.raises(InvalidCiphertext, match=r"^invalid ciphertext$"):
        await DataKeys(source, keystore).get(key_id)


@pytest.mark.anyio
async def test_destroyed_key_is_invalid_and_leaves_no_trace(
    source: KeyringSource, keystore: SQLiteKeyStore
) -> None:
    keys = DataKeys(source, keystore)
    dk, other = await keys.create(), await keys.create()
    record = await keystore.get(dk.id)
    assert record is not None
    assert await keys.destroy(dk.id)
    assert not await keys.destroy(dk.id)
    with pytest.raises(InvalidCiphertext, match=r"^invalid ciphertext$"):
        await keys.get(dk.id)  # not served from the cache either
    with pytest.raises(InvalidCiphertext):
        await DataKeys(source, keystore).get(dk.id)
    assert (await keys.get(other.id)) == other
    files = [p for p in keystore.path.parent.iterdir() if p.name.startswith("keystore.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert record.wrapped not in raw
    assert dk.id.encode() not in raw
    assert other.id.encode() in raw


@pytest.mark.anyio
async def test_wrapped_key_moved_to_another_id_is_invalid(
    source: KeyringSource, keystore: SQLiteKeyStore
) -> None:
    dk = await DataKeys(source, keystore).create()
    record = await keystore.get(dk.id)
    assert record is not None
    await keystore.put(WrappedKey("0123456789abcdef", record.kek_id, record.wrapped, 0))
    with pytest.raises(InvalidCiphertext):
        await DataKeys(source, keystore).get("0123456789abcdef")


@pytest.mark.anyio
async def test_unknown_kek_reloads_the_file_once(
    source: KeyringSource, keystore: SQLiteKeyStore
) -> None:
    clock = [100.0]
    server = DataKeys(source, keystore, now=lambda: clock[0])
    assert source.path is not None
    rotated = source.keyring.with_new_primary()
    write_key_file(source.path, rotated, replace=True)
    os.utime(source.path, ns=(1, 1))
    cli = DataKeys(KeyringSource(rotated), keystore)
    dk = await cli.create()
    assert (await server.get(dk.id)) == dk  # picked up the rotation
    assert server.source.keyring == rotated
    await keystore.put(WrappedKey("0123456789abcdef", "ffffffffffffffff", b"\1" * 61, 0))
    with pytest.raises(InvalidCiphertext):
        await server.get("0123456789abcdef")


@pytest.mark.anyio
async def test_create_retries_on_conflict(source: KeyringSource, keystore: SQLiteKeyStore) -> None:
    ids = iter(["00000000000000aa", "00000000000000aa", "00000000000000bb"])
    keys = DataKeys(source, keystore, new_id=lambda: next(ids))
    assert (await keys.create()).id == "00000000000000aa"
    assert (await keys.create()).id == "00000000000000bb"
    with pytest.raises(Conflict):
        await DataKeys(source, keystore, new_id=lambda: "00000000000000aa").create()


@pytest.mark.anyio
async def test_cache_stays_bounded(source: KeyringSource, keystore: SQLiteKeyStore) -> None:
    keys = DataKeys(source, keystore, cache_size=3)
    created = [await keys.create() for _ in range(10)]
    assert keys.cached == 3
    for dk in created:
        assert (await keys.get(dk.id)) == dk
        assert keys.cached <= 3
    await keys.get(created[7].id)  # most recently used: survives the next misses
    await keys.get(created[0].id)
    await keys.get(created[1].id)
    assert created[7].id in keys._cache
    assert keys.cached == 3
