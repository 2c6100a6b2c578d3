"""Writing personal data to a file: owner-only from the first byte, whole or not at all.

The bundle goes to a temporary file (mode 0600, created exclusively, never through a
symbolic link) in the target's folder, is flushed to disk, and only then takes the
target's name: by a hard link when nothing may be overwritten (the link fails if the
name exists, whatever it points to), by a rename when replacing is allowed. A crash or
a full disk leaves the target as it was, never half a bundle or a readable copy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from tracker.errors import AshiatoError, Invalid


class OutputError(AshiatoError):
    """The file could not be written (permissions, full disk, I/O error)."""


def check_target(path: Path, *, replace: bool = False) -> None:
    """Refuse, before any work, a target that must not be written (Invalid)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise Invalid(f"cannot use {path}: {exc.strerror}") from None
    if mode is not None:
        if stat.S_ISLNK(mode):
            raise Invalid(f"{path} is a symbolic link: name the real file")
        if stat.S_ISDIR(mode):
            raise Invalid(f"{path} is a directory: name a file")
        if not stat.S_ISREG(mode):
            raise Invalid(f"{path} is not a regular file")
        if not replace:
            raise Invalid(f"{path} exists: pass --force to replace it")
    if not path.parent.is_dir():
        raise Invalid(f"no such directory: {path.parent}")


def write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write ``data`` as ``path`` (0600) via a temporary file; see the module docstring."""
    check_target(path, replace=replace)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_new(temp, data)
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)
        sync_folder(path.parent)
    except FileExistsError:
        raise Invalid(f"{path} exists: pass --force to replace it") from None
    except IsADirectoryError:
        raise Invalid(f"{path} is a directory: name a file") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _write_new(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def sync_folder(folder: Path) -> None:
    """Make the new name durable too (the data already is)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
