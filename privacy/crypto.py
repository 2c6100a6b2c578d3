"""The one home of cryptography: a tiny safe API, one opaque error.

Every personal field is sealed with AES-256-GCM-SIV under its lead's data key (DEK),
bound to its table, column and row. DEKs are stored only wrapped (sealed the same way)
by a key-encryption key (KEK) from the master key file, in a key store kept apart from
the data: destroying a DEK makes that lead unreadable in every copy of the data.

Ciphertext: ``version (1) | key id (8) | nonce (12) | ciphertext + tag (16)``. Version and
key id are authenticated with the caller's associated data. Anything wrong with a
ciphertext raises :class:`InvalidCiphertext` and nothing else, with one message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from tracker.errors import AshiatoError, ConfigError, Conflict
from tracker.storage.keystore import KeyStore, NotCurrentKek, WrappedKey

log = logging.getLogger("ashiato.keys")

VERSION = 1
KEY_BYTES = 32
_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = 1 + _ID_BYTES
_ID_PATTERN = re.compile(r"[0-9a-f]{16}")
RELOAD_EVERY = 5.0
"""Seconds between checks of the key file's mtime by a running server."""


class InvalidCiphertext(AshiatoError):
    """A ciphertext is corrupt, moved, truncated, or its key is unknown or destroyed."""

    def __init__(self) -> None:
        super().__init__("invalid ciphertext")


class KeyConfigError(ConfigError):
    """The master key is missing, malformed or unsafely stored (never shows key material)."""


# -- sealing --------------------------------------------------------------------------


def new_key_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def is_key_id(value: str) -> bool:
    return _ID_PATTERN.fullmatch(value) is not None


def _id_bytes(key_id: str) -> bytes:
    if not is_key_id(key_id):
        raise ValueError("a key id is 16 lowercase hex characters")
    return bytes.fromhex(key_id)


def _cipher(key: bytes) -> AESGCMSIV:
    if len(key) != KEY_BYTES:
        raise ValueError("keys are 32 bytes")
    return AESGCMSIV(key)


def seal(key: bytes, key_id: str, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``; ``associated`` is bound but not stored."""
    header = bytes([VERSION]) + _id_bytes(key_id)
    nonce = os.urandom(_NONCE_BYTES)
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


def _wrap_context(dek_id: str) -> bytes:
    return _context(b"ashiato-dek-v1", dek_id)


# -- MACs and the blind index ---------------------------------------------------------


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


# -- the keyring ----------------------------------------------------------------------


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
        return cls(kek_id, {kek_id: os.urandom(KEY_BYTES)}, os.urandom(32), os.urandom(32))

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
        keks = {**self.keks, kek_id: os.urandom(KEY_BYTES)}
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
        try:
            doc: Any = json.loads(text)
        except ValueError:
            raise KeyConfigError("master key: not a JSON keyring document") from None
        if not isinstance(doc, dict) or doc.get("ashiato_keyring") != 1:
            raise KeyConfigError("master key: expected a JSON object with ashiato_keyring: 1")
        unknown = sorted(
            set(doc) - {"ashiato_keyring", "primary", "keks", "index_key", "audit_key"}
        )
        if unknown:
            raise KeyConfigError(f"master key: unknown field(s) {', '.join(unknown)}")
        keks = doc.get("keks")
        if not isinstance(keks, dict) or not keks:
            raise KeyConfigError("master key: keks must be a non-empty object of id: key")
        if not all(isinstance(k, str) and is_key_id(k) for k in keks):
            raise KeyConfigError(
                "master key: keks: every KEK id must be 16 lowercase hex characters"
            )
        if not isinstance(doc.get("primary"), str) or doc["primary"] not in keks:
            raise KeyConfigError("master key: primary must be the id of one of keks")
        return cls(
            primary=doc["primary"],
            keks={k: _unb64(v, f"keks[{k}]") for k, v in keks.items()},
            index_key=_unb64(doc.get("index_key"), "index_key"),
            audit_key=_unb64(doc.get("audit_key"), "audit_key"),
        )


# -- the key file ---------------------------------------------------------------------


def write_key_file(path: str | Path, keyring: Keyring, *, replace: bool = False) -> None:
    """Write atomically, mode 0600 from the first byte; refuse to overwrite unless told."""
    path = Path(path)
    if not replace and path.exists():
        raise KeyConfigError(f"key file {path} exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyConfigError(f"cannot write key file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(keyring.to_text())
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the path appeared meanwhile: never clobbers
    except FileExistsError:
        raise KeyConfigError(f"key file {path} exists; refusing to overwrite it") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: str | Path) -> Keyring:
    """Read and check a key file; refuse one every user can read."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyConfigError(
            f"key file {path} does not exist (create one with `ashiato keys init`)"
        ) from None
    except OSError as exc:
        raise KeyConfigError(f"cannot read key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & stat.S_IROTH:
            raise KeyConfigError(
                f"key file {path} is readable by every user; run `chmod 600 {path}`"
            )
        if mode & stat.S_IRGRP:
            log.warning("key file %s is readable by its group; consider `chmod 600`", path)
        raw = file.read()
    try:
        return Keyring.from_text(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyConfigError(f"{path}: master key: not a JSON keyring document") from None
    except KeyConfigError as exc:
        raise KeyConfigError(f"{path}: {exc}") from None


_DEV_WARNING = """
##########################################################################
  DEVELOPMENT MASTER KEY: %s
  Created because ASHIATO_DEV is on and no master key is configured.
  NOT FOR PRODUCTION. Whoever has this file can read every lead.
  Losing it loses every lead's data: back it up, APART from the data.
  In production run `ashiato keys init` and set ASHIATO_MASTER_KEY_FILE.
##########################################################################"""


def _locate_keyring(
    *, key_file: str, key_text: str, dev: bool, dev_key_file: Path, database_dir: Path | None
) -> tuple[Keyring, Path | None]:
    if key_file:
        return read_key_file(key_file), Path(key_file)
    if key_text:
        return Keyring.from_text(key_text), None
    if not dev:
        raise KeyConfigError(
            "no master key: set ASHIATO_MASTER_KEY_FILE (create one with `ashiato keys init`)"
            " or ASHIATO_MASTER_KEY"
        )
    if database_dir is not None and dev_key_file.resolve().is_relative_to(database_dir.resolve()):
        # A key stored with the data makes crypto-shredding (and encryption) pointless.
        raise KeyConfigError(f"dev key file {dev_key_file} must not be inside {database_dir}")
    if dev_key_file.exists():
        log.warning("using the development master key %s (not for production)", dev_key_file)
    else:
        write_key_file(dev_key_file, Keyring.generate())
        log.warning(_DEV_WARNING, dev_key_file)
    return read_key_file(dev_key_file), dev_key_file


def load_keyring(
    *, key_file: str, key_text: str, dev: bool, dev_key_file: Path, database_dir: Path | None
) -> Keyring:
    """The keyring from the file, else the text, else (dev only) a created dev key file."""
    keyring, _ = _locate_keyring(
        key_file=key_file,
        key_text=key_text,
        dev=dev,
        dev_key_file=dev_key_file,
        database_dir=database_dir,
    )
    return keyring


class KeyringSource:
    """The current keyring; re-read when its file changes (a rotation by the CLI)."""

    def __init__(self, keyring: Keyring, *, path: Path | None = None) -> None:
        self.keyring = keyring
        self.path = path
        self.pinned: bytes | None = None
        """Once set (the key store's fingerprint): a re-read file must have it."""
        self._mtime = _mtime(path)
        self._checked = -float("inf")

    @classmethod
    def load(
        cls,
        *,
        key_file: str,
        key_text: str,
        dev: bool,
        dev_key_file: Path,
        database_dir: Path | None,
    ) -> KeyringSource:
        """As :func:`load_keyring`, remembering the file it came from."""
        keyring, path = _locate_keyring(
            key_file=key_file,
            key_text=key_text,
            dev=dev,
            dev_key_file=dev_key_file,
            database_dir=database_dir,
        )
        return cls(keyring, path=path)

    def reload(self) -> Keyring:
        if self.path is not None:
            mtime = _mtime(self.path)
            keyring = read_key_file(self.path)
            if self.pinned is not None and keyring.fingerprint != self.pinned:
                # Another master key: its blind indexes and audit MACs would not match.
                raise KeyConfigError(
                    f"key file {self.path} now holds another master key; keeping the loaded one"
                )
            self.keyring = keyring
            self._mtime = mtime
        return self.keyring

    def maybe_reload(self, now: float, *, force: bool = False) -> bool:
        """Re-read the file if it changed, checking at most every RELOAD_EVERY seconds
        (``force``: check now, when a KEK the key store names is not in memory)."""
        if self.path is None or (not force and 0 <= now - self._checked < RELOAD_EVERY):
            return False
        self._checked = now
        if _mtime(self.path) == self._mtime:
            return False
        try:
            self.reload()
        except KeyConfigError as exc:
            # A running server keeps the keys it has rather than stop serving.
            log.error("key file not reloaded: %s", exc)
            return False
        log.info("key file %s reloaded (primary KEK %s)", self.path, self.keyring.primary)
        return True


def _mtime(path: Path | None) -> int | None:
    try:
        return None if path is None else path.stat().st_mtime_ns
    except OSError:
        return None


# -- data keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataKey:
    """One lead's data key (DEK); its repr never shows the key."""

    id: str
    key: bytes = field(repr=False)


def wrap_key(
    keyring: Keyring, dek: DataKey, *, created_at: int, kek_id: str | None = None
) -> WrappedKey:
    """``dek`` sealed by the primary KEK (or ``kek_id``), bound to its own id (no
    swapping rows)."""
    kek_id = kek_id or keyring.primary
    if kek_id not in keyring.keks:
        raise KeyConfigError(f"KEK {kek_id} is not in the key file")
    wrapped = seal(keyring.keks[kek_id], kek_id, dek.key, _wrap_context(dek.id))
    return WrappedKey(id=dek.id, kek_id=kek_id, wrapped=wrapped, created_at=created_at)


def unwrap_key(keyring: Keyring, record: WrappedKey) -> DataKey:
    """The DEK in ``record``; InvalidCiphertext if its KEK is unknown or it is corrupt."""
    kek = keyring.keks.get(record.kek_id)
    if kek is None:
        raise InvalidCiphertext
    key = unseal(kek, record.kek_id, record.wrapped, _wrap_context(record.id))
    if len(key) != KEY_BYTES:
        raise InvalidCiphertext
    return DataKey(record.id, key)


def seal_field(dk: DataKey, table: str, column: str, row_id: str, value: str) -> bytes:
    return seal(dk.key, dk.id, value.encode(), field_context(table, column, row_id))


def open_field(dk: DataKey, table: str, column: str, row_id: str, blob: bytes) -> str:
    plaintext = unseal(dk.key, dk.id, blob, field_context(table, column, row_id))
    try:
        return plaintext.decode()
    except UnicodeDecodeError:
        raise InvalidCiphertext from None


class DataKeys:
    """Create, fetch (through a bounded LRU cache) and destroy data keys."""

    def __init__(
        self,
        source: KeyringSource,
        keystore: KeyStore,
        *,
        cache_size: int = 10_000,
        now: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_key_id,
    ) -> None:
        self.source = source
        self.keystore = keystore
        self.cache_size = cache_size
        self._now = now
        self._new_id = new_id
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._current: str | None = None  # the key store's current KEK, as last read
        self._destroyed = 0  # bumped by destroy(): a get that overlapped one caches nothing

    @property
    def cached(self) -> int:
        return len(self._cache)

    async def create(self) -> DataKey:
        """A new data key, wrapped by the key store's current KEK: the key file's primary
        may lag a rotation by RELOAD_EVERY seconds, and a key wrapped by a KEK that is
        then retired would be lost (the key store refuses it: we re-read and retry)."""
        self.source.maybe_reload(self._now())
        for _ in range(5):  # 64-bit random ids: a conflict is all but impossible
            dek = DataKey(self._new_id(), os.urandom(KEY_BYTES))
            kek_id = await self._current_kek()
            created_at = int(self._now() * 1000)
            record = wrap_key(self.source.keyring, dek, created_at=created_at, kek_id=kek_id)
            try:
                await self.keystore.put(record)
            except Conflict:
                continue
            except NotCurrentKek:
                self._current = None  # rotated meanwhile
                continue
            self._remember(dek)
            return dek
        raise Conflict("could not store a new data key; try again")

    async def _current_kek(self) -> str:
        if self._current is None:
            state = await self.keystore.keyring_state()
            self._current = state.primary_kek or self.source.keyring.primary
        if self._current not in self.source.keyring.keks:
            self.source.maybe_reload(self._now(), force=True)  # the rotation's new KEK
        if self._current not in self.source.keyring.keks:
            raise KeyConfigError(
                f"the key store's current KEK {self._current} is not in the master key"
                " (ASHIATO_MASTER_KEY_FILE): use the key file `ashiato keys rotate` wrote"
            )
        return self._current

    async def get(self, key_id: str) -> DataKey:
        """The key, or InvalidCiphertext if it is unknown, destroyed or corrupt."""
        dek = self._cache.get(key_id)
        if dek is not None:
            self._cache.move_to_end(key_id)
            return dek
        destroyed = self._destroyed
        record = await self.keystore.get(key_id) if is_key_id(key_id) else None
        if record is None:
            raise InvalidCiphertext
        if record.kek_id not in self.source.keyring.keks:
            self.source.maybe_reload(self._now(), force=True)  # rotated meanwhile?
        dek = unwrap_key(self.source.keyring, record)
        if destroyed == self._destroyed:
            self._remember(dek)
        return dek

    async def destroy(self, key_id: str) -> bool:
        """Crypto-shred: delete the key for good; True if it existed."""
        self._destroyed += 1
        self._cache.pop(key_id, None)
        try:
            return await self.keystore.delete(key_id)
        finally:
            self._destroyed += 1
            self._cache.pop(key_id, None)

    def _remember(self, dek: DataKey) -> None:
        self._cache[dek.id] = dek
        self._cache.move_to_end(dek.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
