"""Console users: created by the CLI, Argon2id passwords, optional TOTP, one role each.

Passwords are hashed with Argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane); a
hash made with older parameters is re-hashed at the next sign-in. Emails are personal
data: kept sealed (system key, like site secrets) and found by their blind index, as a
lead's are. The TOTP secret is sealed too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from privacy.personal import PersonalData
from privacy.vault import Vault
from tracker.errors import Conflict, Invalid, NotFound
from tracker.scope import limit_for
from tracker.storage import Store
from tracker.storage.records import ConsoleUser

ROLES = ("admin", "marketing", "legal")
LANGUAGES = ("ja", "en")
DEFAULT_ZONE = "Asia/Tokyo"
MIN_PASSWORD = 12
MAX_PASSWORD = 256
SECOND_FACTOR_ROLES = ("admin", "legal")
"""Roles that must use TOTP when ``ASHIATO_CONSOLE_REQUIRE_2FA`` is set."""

_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Account:
    """A user with their email opened (for pages and the CLI)."""

    user: ConsoleUser
    email: str


def one_time_password() -> str:
    """A password printed once, for the user to sign in with (20 characters)."""
    return secrets.token_urlsafe(15)


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


async def hash_password(password: str) -> str:
    """Argon2id takes ~20-50 ms of CPU: off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, password)


async def password_matches(user: ConsoleUser | None, password: str) -> bool:
    """Constant work whether or not the user exists (no user enumeration by timing)."""
    encoded = user.password if user is not None else _DUMMY
    try:
        await asyncio.to_thread(_HASHER.verify, encoded, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


def totp_matches(secret: str, code: str) -> bool:
    """A 6-digit code of this or the neighbouring 30-second step."""
    code = code.strip().replace(" ", "")
    return len(code) == 6 and code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)


class Accounts:
    def __init__(self, store: Store, personal: PersonalData, vault: Vault) -> None:
        self.store, self.personal, self.vault = store, personal, vault

    async def add(
        self, email: str, role: str, *, now: int, password: str | None = None,
        sites: Sequence[int] = (),
    ) -> tuple[Account, str]:  # fmt: skip
        """A new user and the password they sign in with (generated unless given); with
        ``sites`` (ids), limited to them (``tracker.scope``)."""
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        limit = limit_for(role, sites)
        email = _check_email(email)
        password = check_password(password) if password is not None else one_time_password()
        user_id = "u_" + secrets.token_hex(8)
        user = ConsoleUser(
            user_id, self.personal.email_index(email),
            await self.vault.seal("console_users", "email", user_id, email.encode()),
            role, await hash_password(password), None, "ja", DEFAULT_ZONE, now, sites=limit,
        )  # fmt: skip
        if not await self.store.add_console_user(user):
            raise Conflict("a console user with that email exists")
        return Account(user, email), password

    async def find(self, email: str) -> ConsoleUser | None:
        return await self.store.console_user_by_index(self.personal.email_index(email))

    async def named(self, email: str) -> ConsoleUser:
        user = await self.find(email)
        if user is None:
            raise NotFound("no console user with that email")
        return user

    async def opened(self, user: ConsoleUser) -> Account:
        email = await self.vault.open("console_users", "email", user.id, user.email)
        return Account(user, email.decode())

    async def all(self) -> list[Account]:
        return [await self.opened(u) for u in await self.store.console_users()]

    async def disable(self, user: ConsoleUser, *, now: int) -> ConsoleUser:
        """No more sign-ins; every session ends at once."""
        changed = dataclasses.replace(user, disabled_at=user.disabled_at or now)
        await self.store.update_console_user(changed, end_sessions=True)
        return changed

    async def reset(self, user: ConsoleUser) -> str:
        """A new one-time password; sessions end and the second factor is removed (a
        reset is for someone who lost either). A disabled user is enabled again."""
        password = one_time_password()
        changed = dataclasses.replace(
            user, password=await hash_password(password), totp=None, disabled_at=None
        )
        await self.store.update_console_user(changed, end_sessions=True)
        return password

    async def set_password(self, user: ConsoleUser, password: str) -> ConsoleUser:
        changed = dataclasses.replace(user, password=await hash_password(check_password(password)))
        await self.store.update_console_user(changed, end_sessions=True)
        return changed

    async def rehash_if_old(self, user: ConsoleUser, password: str) -> None:
        if _HASHER.check_needs_rehash(user.password):
            changed = dataclasses.replace(user, password=await hash_password(password))
            await self.store.update_console_user(changed, end_sessions=False)

    async def set_preferences(self, user: ConsoleUser, language: str, zone: str) -> ConsoleUser:
        if language not in LANGUAGES:
            raise Invalid("language must be ja or en")
        changed = dataclasses.replace(user, language=language, time_zone=zone)
        await self.store.update_console_user(changed, end_sessions=False)
        return changed

    async def totp_secret(self, user: ConsoleUser) -> str | None:
        if user.totp is None:
            return None
        return (await self.vault.open("console_users", "totp", user.id, user.totp)).decode()

    async def enable_totp(self, user: ConsoleUser, secret: str, code: str) -> ConsoleUser:
        """Turn on TOTP once the user proved their app holds ``secret``."""
        if not totp_matches(secret, code):
            raise Invalid("the code does not match: check the app's clock and try again")
        sealed = await self.vault.seal("console_users", "totp", user.id, secret.encode())
        changed = dataclasses.replace(user, totp=sealed)
        await self.store.update_console_user(changed, end_sessions=False)
        return changed


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > 254 or any(
        c.isspace() or ord(c) < 32 for c in email
    ):  # fmt: skip
        raise Invalid("not an email address")
    return email
