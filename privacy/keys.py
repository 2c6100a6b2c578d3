"""Key operations behind ``ashiato keys``: init, rotate, retire, status.

A rotation is crash-safe by construction: the new KEK is written to the key file
(atomically) *before* any data key is re-wrapped under it, every batch is one
transaction, and the key store's ``kek_id`` column says what is left. Run it again after
a crash and it resumes under the same new KEK instead of making another one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from privacy.crypto.datakeys import unwrap_key, wrap_key
from privacy.crypto.keyfile import KeyringSource, read_key_file, write_key_file
from privacy.crypto.keyring import KeyConfigError, Keyring
from privacy.crypto.primitives import InvalidCiphertext
from tracker.errors import StorageError
from tracker.storage.keystore import KeyringState, KeyStore, WrappedKey


@dataclass(frozen=True, slots=True)
class RotationReport:
    primary: str
    """The KEK every data key is wrapped by now."""
    generated: bool
    """False when an interrupted rotation was resumed under its existing new KEK."""
    rewrapped: int
    retirable: tuple[str, ...]
    """Old KEKs that wrap nothing any more: `ashiato keys retire` can drop them."""


@dataclass(frozen=True, slots=True)
class KeyStatus:
    primary: str
    keys_per_kek: Mapping[str, int]
    """Every KEK in the key file (0 when it wraps nothing) with its data key count."""
    missing: Mapping[str, int]
    """KEKs that wrap data keys but are not in the key file: those keys are unreadable."""
    problem: str = ""
    """Why this master key is not the key store's ('' when it is)."""


def init_key_file(path: str | Path) -> Keyring:
    """Create a new key file (mode 0600); never overwrites one."""
    keyring = Keyring.generate()
    write_key_file(path, keyring)
    return keyring


def _no_progress(done: int, total: int) -> None:
    pass


async def rotate(
    source: KeyringSource,
    keystore: KeyStore,
    key_file: str | Path,
    *,
    batch: int = 500,
    progress: Callable[[int, int], None] = _no_progress,
) -> RotationReport:
    """Re-wrap every data key under a new primary KEK (or finish an interrupted rotation)."""
    path = _required(key_file, "rotate")
    with _locked(path):
        keyring = read_key_file(path)
        counts = await keystore.count_by_kek()
        _check_known(keyring, counts)
        _check_same(keyring, await keystore.keyring_state())
        await keystore.claim_keyring(keyring.primary, keyring.fingerprint)
        generated = all(kek_id == keyring.primary for kek_id in counts)
        if generated:
            keyring = keyring.with_new_primary()
            write_key_file(path, keyring, replace=True)  # before any key depends on it
        source.keyring = keyring
        # From here on servers wrap new keys only by the new KEK (those that have not
        # re-read the file yet are refused and re-read it), so none lands under an old
        # KEK after the loop below has moved them all: retiring one then is safe.
        await keystore.set_current_kek(keyring.primary)
        left = sum(n for kek_id, n in counts.items() if kek_id != keyring.primary)
        done = await _rewrap_all(keyring, keystore, batch, left, progress)
        counts = await keystore.count_by_kek()
    retirable = tuple(k for k in keyring.keks if k != keyring.primary and not counts.get(k))
    return RotationReport(keyring.primary, generated, done, retirable)


async def _rewrap_all(
    keyring: Keyring,
    keystore: KeyStore,
    batch: int,
    total: int,
    progress: Callable[[int, int], None],
) -> int:
    done = 0
    while stale := await keystore.wrapped_by_other(keyring.primary, limit=batch):
        pairs = [(old, _rewrapped(keyring, old)) for old in stale]
        done += await keystore.rewrap(pairs)
        # Keys created meanwhile by a server that has not reloaded the file yet add work.
        total = max(total, done)
        progress(done, total)
    return done


def _rewrapped(keyring: Keyring, old: WrappedKey) -> WrappedKey:
    try:
        dek = unwrap_key(keyring, old)
    except InvalidCiphertext:
        if old.kek_id not in keyring.keks:
            raise KeyConfigError(f"KEK {old.kek_id} is not in the key file") from None
        raise StorageError(f"data key {old.id} is corrupt; rotation stopped") from None
    return wrap_key(keyring, dek, created_at=old.created_at)


async def retire(
    source: KeyringSource, keystore: KeyStore, key_file: str | Path, kek_id: str
) -> Keyring:
    """Drop an old KEK from the key file once it wraps no data key."""
    path = _required(key_file, "retire")
    with _locked(path):
        keyring = read_key_file(path)
        remaining = keyring.without(kek_id)  # refuses the primary and unknown ids
        _check_same(keyring, await keystore.keyring_state())
        state = await keystore.claim_keyring(keyring.primary, keyring.fingerprint)
        if state.primary_kek == kek_id:
            raise KeyConfigError(
                f"KEK {kek_id} is still the key store's current KEK (running servers wrap "
                "new data keys by it); run `ashiato keys rotate` to finish the rotation first"
            )
        still = (await keystore.count_by_kek()).get(kek_id, 0)
        if still:
            raise KeyConfigError(
                f"KEK {kek_id} still wraps {still} data key(s); "
                "run `ashiato keys rotate` to finish re-wrapping them first"
            )
        write_key_file(path, remaining, replace=True)
    source.keyring = remaining
    return remaining


async def status(keyring: Keyring, keystore: KeyStore) -> KeyStatus:
    counts = await keystore.count_by_kek()
    return KeyStatus(
        primary=keyring.primary,
        keys_per_kek={k: counts.get(k, 0) for k in keyring.keks},
        missing={k: n for k, n in counts.items() if k not in keyring.keks},
        problem=mismatch(keyring, await keystore.keyring_state(), counts) or "",
    )


def mismatch(keyring: Keyring, state: KeyringState, counts: Mapping[str, int]) -> str | None:
    """Why ``keyring`` is not the master key of the key store in ``state`` (whose data keys
    per KEK are ``counts``), or None. Started with another key, a server would show no
    lead and make duplicates of known people: it must refuse instead."""
    if state.fingerprint is not None and state.fingerprint != keyring.fingerprint:
        return (
            "this is another master key than the one this deployment's key store was made "
            "with (its index and audit keys differ)"
        )
    missing = sorted(k for k in counts if k not in keyring.keks)
    if missing:
        return (
            f"KEK(s) {', '.join(missing)} that wrap this deployment's data keys are not in "
            "it (another master key, or a copy older than a rotation)"
        )
    if state.primary_kek is not None and state.primary_kek not in keyring.keks:
        return (
            f"the key store's current KEK {state.primary_kek} is not in it (a copy older "
            "than the last `ashiato keys rotate`)"
        )
    return None


async def check_master_key(source: KeyringSource, keystore: KeyStore, *, setting: str) -> None:
    """Refuse a master key that is not the key store's (KeyConfigError naming ``setting``);
    on first use record which one it is, and pin the source to it for later re-reads."""
    keyring = source.keyring
    problem = mismatch(keyring, await keystore.keyring_state(), await keystore.count_by_kek())
    if problem is None:
        state = await keystore.claim_keyring(keyring.primary, keyring.fingerprint)
        problem = mismatch(keyring, state, {})  # another process claimed it first?
    if problem is not None:
        raise KeyConfigError(
            f"wrong master key: {setting}: {problem}; `ashiato keys status` shows what is missing"
        )
    source.pinned = keyring.fingerprint


def _check_same(keyring: Keyring, state: KeyringState) -> None:
    problem = mismatch(keyring, state, {})
    if problem is not None:
        raise KeyConfigError(f"the key file: {problem}")


def _check_known(keyring: Keyring, counts: Mapping[str, int]) -> None:
    missing = {k: n for k, n in counts.items() if k not in keyring.keks}
    if missing:
        listed = ", ".join(f"{k} ({n} keys)" for k, n in sorted(missing.items()))
        raise KeyConfigError(f"data keys are wrapped by KEKs missing from the key file: {listed}")


def _required(key_file: str | Path, operation: str) -> Path:
    if not str(key_file):
        raise KeyConfigError(
            f"`ashiato keys {operation}` rewrites the key file: set ASHIATO_MASTER_KEY_FILE "
            "(ASHIATO_MASTER_KEY cannot be rewritten)"
        )
    return Path(key_file)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two rotations at once would each write their own new KEK and one would be lost,
    # with the keys re-wrapped under it.
    try:
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyConfigError(f"cannot lock key file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
