"""The master key file: written atomically with mode 0600, read with its permissions
checked, created (loudly) in dev mode, and re-read by a running server after a rotation."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from privacy.crypto.keyring import KeyConfigError, Keyring
from privacy.files import sync_folder

log = logging.getLogger("ashiato.keys")

RELOAD_EVERY = 5.0
"""Seconds between checks of the key file's mtime by a running server."""


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
    sync_folder(path.parent)


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
