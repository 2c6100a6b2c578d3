"""privacy.keys: init, rotate (and resume), retire, status; the SQLite key store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from privacy.crypto.datakeys import DataKey, DataKeys, open_field, seal_field
from privacy.crypto.keyfile import KeyringSource, read_key_file
from privacy.crypto.keyring import KeyConfigError, Keyring
from privacy.keys import init_key_file, retire, rotate, status
from tracker.errors import Conflict
from tracker.storage.keystore import WrappedKey
from tracker.storage.sqlite.keystore import SQLiteKeyStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def keystore(tmp_path: Path) -> AsyncIterator[SQLiteKeyStore]:
    store = SQLiteKeyStore(tmp_path / "keystore.db")
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "master.key"
    init_key_file(path)
    return path


Sealed = list[tuple[str, str, bytes]]


async def seal_many(keys: DataKeys, n: int) -> Sealed:
    sealed = []
    for i in range(n):
        dk = await keys.create()
        sealed.append(
            (
                dk.id,
                f"lead{i}@example.jp",
                seal_field(dk, "leads", "email", str(i), f"lead{i}@example.jp"),
            )
        )
    return sealed


async def assert_all_open(keys: DataKeys, sealed: Sealed) -> None:
    for i, (key_id, value, blob) in enumerate(sealed):
        assert open_field(await keys.get(key_id), "leads", "email", str(i), blob) == value


def fresh(key_file: Path, keystore: SQLiteKeyStore) -> DataKeys:
    return DataKeys(KeyringSource(read_key_file(key_file), path=key_file), keystore)


class Interrupted(Exception):
    pass


def stop_after_first_batch(done: int, total: int) -> None:
    raise Interrupted


@pytest.mark.anyio
async def test_rotate_then_retire(key_file: Path, keystore: SQLiteKeyStore) -> None:
    source = KeyringSource(read_key_file(key_file), path=key_file)
    old = source.keyring.primary
    sealed = await seal_many(DataKeys(source, keystore), 1_200)
    calls: list[tuple[int, int]] = []

    report = await rotate(
        source, keystore, key_file, batch=500, progress=lambda *a: calls.append(a)
    )

    assert calls == [(500, 1_200), (1_000, 1_200), (1_200, 1_200)]
    assert report.generated
    assert report.rewrapped == 1_200
    assert report.primary != old
    assert report.retirable == (old,)
    assert read_key_file(key_file).primary == report.primary == source.keyring.primary
    assert await keystore.count_by_kek() == {report.primary: 1_200}
    await assert_all_open(fresh(key_file, keystore), sealed)

    await retire(source, keystore, key_file, old)
    assert set(read_key_file(key_file).keks) == {report.primary}
    assert set(source.keyring.keks) == {report.primary}
    await assert_all_open(fresh(key_file, keystore), sealed)
    with pytest.raises(KeyConfigError, match="primary"):
        await retire(source, keystore, key_file, report.primary)


@pytest.mark.anyio
async def test_interrupted_rotation_resumes_under_the_same_kek(
    key_file: Path, keystore: SQLiteKeyStore
) -> None:
    source = KeyringSource(read_key_file(key_file), path=key_file)
    old = source.keyring.primary
    sealed = await seal_many(DataKeys(source, keystore), 1_200)

    with pytest.raises(Interrupted):
        await rotate(source, keystore, key_file, batch=500, progress=stop_after_first_batch)
    new = read_key_file(key_file).primary
    assert await keystore.count_by_kek() == {new: 500, old: 700}
    with pytest.raises(KeyConfigError, match="still wraps 700 data key"):
        await retire(source, keystore, key_file, old)
    await assert_all_open(fresh(key_file, keystore), sealed)  # half-way is readable too

    report = await rotate(source, keystore, key_file, batch=500)
    assert not report.generated
    assert report.primary == new
    assert report.rewrapped == 700
    assert set(read_key_file(key_file).keks) == {old, new}  # no second new KEK
    assert await keystore.count_by_kek() == {new: 1_200}
    await retire(source, keystore, key_file, old)
    await assert_all_open(fresh(key_file, keystore), sealed)


@pytest.mark.anyio
async def test_rotation_needs_a_key_file(key_file: Path, keystore: SQLiteKeyStore) -> None:
    source = KeyringSource(read_key_file(key_file))
    with pytest.raises(KeyConfigError, match="ASHIATO_MASTER_KEY_FILE"):
        await rotate(source, keystore, "")
    with pytest.raises(KeyConfigError, match="ASHIATO_MASTER_KEY_FILE"):
        await retire(source, keystore, "", "0123456789abcdef")


@pytest.mark.anyio
async def test_rotation_refuses_keys_of_a_lost_kek(
    key_file: Path, keystore: SQLiteKeyStore
) -> None:
    source = KeyringSource(read_key_file(key_file), path=key_file)
    await keystore.put(WrappedKey("0123456789abcdef", "ffffffffffffffff", b"x" * 61, 0))
    with pytest.raises(KeyConfigError, match="ffffffffffffffff \\(1 keys\\)"):
        await rotate(source, keystore, key_file)
    assert read_key_file(key_file) == source.keyring  # nothing written


@pytest.mark.anyio
async def test_status_counts_keys_per_kek(
    key_file: Path, keystore: SQLiteKeyStore, tmp_path: Path
) -> None:
    source = KeyringSource(read_key_file(key_file), path=key_file)
    keys = DataKeys(source, keystore)
    for _ in range(3):
        await keys.create()
    old = source.keyring.primary
    report = await rotate(source, keystore, key_file)
    # A key of a lost KEK (the key store refuses to store one now: written behind its back).
    with sqlite3.connect(tmp_path / "keystore.db") as db:
        db.execute("INSERT INTO data_keys VALUES ('0123456789abcdef', ?, ?, 0)",
                   ("f" * 16, b"x" * 61))  # fmt: skip
    result = await status(source.keyring, keystore)
    assert result.primary == report.primary
    assert dict(result.keys_per_kek) == {old: 0, report.primary: 3}
    assert dict(result.missing) == {"ffffffffffffffff": 1}


def test_init_refuses_to_overwrite(key_file: Path) -> None:
    before = read_key_file(key_file)
    with pytest.raises(KeyConfigError, match="refusing to overwrite"):
        init_key_file(key_file)
    assert read_key_file(key_file) == before


# -- the SQLite key store --------------------------------------------------------------


def record(key_id: str, kek_id: str = "aaaaaaaaaaaaaaaa", wrapped: bytes = b"w") -> WrappedKey:
    return WrappedKey(key_id, kek_id, wrapped, 1)


@pytest.mark.anyio
async def test_keystore_put_conflict_and_migrations(keystore: SQLiteKeyStore) -> None:
    await keystore.put(record("0000000000000001"))
    with pytest.raises(Conflict):
        await keystore.put(record("0000000000000001", wrapped=b"other"))
    assert await keystore.get("0000000000000001") == record("0000000000000001")
    assert await keystore.get("0000000000000002") is None
    assert await keystore.migrate() == []


@pytest.mark.anyio
async def test_keystore_rewrap_lets_a_concurrent_delete_win(keystore: SQLiteKeyStore) -> None:
    old = [record(f"000000000000000{i}") for i in range(3)]
    for r in old:
        await keystore.put(r)
    await keystore.delete(old[1].id)
    pairs = [(r, record(r.id, "bbbbbbbbbbbbbbbb", b"new")) for r in old]
    assert await keystore.rewrap(pairs) == 2
    assert await keystore.get(old[1].id) is None
    assert await keystore.count_by_kek() == {"bbbbbbbbbbbbbbbb": 2}
    assert await keystore.wrapped_by_other("bbbbbbbbbbbbbbbb", limit=10) == []
    assert await keystore.rewrap(pairs) == 0  # already replaced: nothing matches `old`


def test_data_key_repr_hides_the_key() -> None:
    dk = DataKey("0123456789abcdef", bytes(range(32)))
    assert "0123456789abcdef" in repr(dk)
    assert "key=" not in repr(dk)
    assert "index_key" not in repr(Keyring.generate())
