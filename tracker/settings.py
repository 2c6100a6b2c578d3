"""One frozen Settings object, built from ``ASHIATO_*`` environment variables once.

A ``.env``-style file (``KEY=value`` lines) is read too when present; the real
environment wins over it. Every field names its variable and explains itself in its
metadata, and a test checks that the README documents each one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _setting(env: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = _setting(
        "ASHIATO_DATABASE_URL",
        "sqlite:///./data/ashiato.db",
        "Where data lives: `sqlite:///path/to/file.db` or `postgresql://user@host/db`.",
    )
    keystore_url: str = _setting(
        "ASHIATO_KEYSTORE_URL",
        "sqlite:///./keys/keystore.db",
        "Where the wrapped per-lead data keys live, apart from the data, so that destroying "
        "a key also makes database copies and backups of that lead unreadable.",
    )
    master_key_file: str = _setting(
        "ASHIATO_MASTER_KEY_FILE",
        "",
        "The key file (`ashiato keys init` makes one, mode 0600): key-encryption keys, "
        "blind-index key, audit key. Never inside the database.",
    )
    master_key: str = _setting(
        "ASHIATO_MASTER_KEY",
        "",
        "The key file's contents, for secret stores that inject environment variables "
        "(used when `ASHIATO_MASTER_KEY_FILE` is empty; `keys rotate` needs the file).",
    )
    dev: bool = _setting(
        "ASHIATO_DEV",
        False,
        "Development mode: without a configured key, create `./keys/dev-master.key` "
        "(loudly). Never in production.",
    )
    host: str = _setting("ASHIATO_HOST", "127.0.0.1", "Address `ashiato serve` binds to.")
    port: int = _setting("ASHIATO_PORT", 8000, "Port `ashiato serve` listens on.")
    workers: int = _setting("ASHIATO_WORKERS", 1, "Server processes for `ashiato serve`.")
    public_url: str = _setting(
        "ASHIATO_PUBLIC_URL",
        "",
        "Where browsers reach the collector, e.g. `https://t.example.co.jp` or "
        "`https://www.example.co.jp/ashiato`; used in printed snippets. "
        "Empty: `http://HOST:PORT`.",
    )
    trusted_proxies: tuple[IPNetwork, ...] = _setting(
        "ASHIATO_TRUSTED_PROXIES",
        (),
        "Comma-separated addresses/CIDRs of reverse proxies whose `X-Forwarded-For` "
        "is believed. Empty: the peer address is the client.",
    )
    max_body_bytes: int = _setting(
        "ASHIATO_MAX_BODY_BYTES", 65_536, "Largest `/collect` body accepted (413 beyond)."
    )
    max_batch_events: int = _setting(
        "ASHIATO_MAX_BATCH_EVENTS", 50, "Most events in one `/collect` batch (413 beyond)."
    )
    rate_ip: float = _setting(
        "ASHIATO_RATE_LIMIT_IP",
        200.0,
        "Events a second one client address (IPv6: one /64) may send; 0: no limit. Generous "
        "on purpose: a company's whole office may share one address.",
    )
    rate_ip_burst: float = _setting(
        "ASHIATO_RATE_LIMIT_IP_BURST", 2000.0, "Events a client address may send at once."
    )
    rate_site: float = _setting(
        "ASHIATO_RATE_LIMIT_SITE", 5000.0, "Events a second one site may send; 0: no limit."
    )
    rate_site_burst: float = _setting(
        "ASHIATO_RATE_LIMIT_SITE_BURST", 50_000.0, "Events a site may send at once."
    )
    rate_api: float = _setting(
        "ASHIATO_RATE_LIMIT_API",
        100.0,
        "API requests a second one client address may make (before its key is even "
        "checked); 0: no limit.",
    )
    rate_api_burst: float = _setting(
        "ASHIATO_RATE_LIMIT_API_BURST", 2000.0, "API requests a client address may make at once."
    )
    batch_max_events: int = _setting(
        "ASHIATO_WRITER_BATCH", 512, "Group commit: write a batch once this many events wait."
    )
    batch_interval_ms: float = _setting(
        "ASHIATO_WRITER_INTERVAL_MS",
        2.0,
        "Group commit: write what waits at most this many milliseconds after it arrived.",
    )
    queue_max_events: int = _setting(
        "ASHIATO_QUEUE_MAX_EVENTS",
        20_000,
        "Events allowed to wait for the writer; beyond it `/collect` answers 503.",
    )
    site_cache_seconds: float = _setting(
        "ASHIATO_SITE_CACHE_SECONDS",
        5.0,
        "How long a running server trusts its cached site list (new sites appear after it).",
    )
    export_dir: str = _setting(
        "ASHIATO_EXPORT_DIR",
        "./exports",
        "Where `ashiato privacy export` writes bundles (mode 0600) when no `-o` is given; "
        "an erasure deletes the person's earlier exports from it.",
    )
    retention_events_days: int = _setting(
        "ASHIATO_RETENTION_EVENTS_DAYS", 395, "Raw events are deleted after this many days."
    )
    retention_visitors_days: int = _setting(
        "ASHIATO_RETENTION_VISITORS_DAYS",
        395,
        "Never-identified visitors are deleted this many days after their last activity.",
    )
    retention_leads_days: int = _setting(
        "ASHIATO_RETENTION_LEADS_DAYS",
        760,
        "Leads without activity for this many days are erased (keys shredded).",
    )
    retention_receipts_days: int = _setting(
        "ASHIATO_RETENTION_RECEIPTS_DAYS",
        1126,
        "Consent receipts (proof) are kept this many days, unless still someone's current state.",
    )
    retention_interval_seconds: float = _setting(
        "ASHIATO_RETENTION_INTERVAL_SECONDS",
        3600.0,
        "How often the server runs retention itself; 0 turns the job off.",
    )
    webhook_retry_seconds: float = _setting(
        "ASHIATO_WEBHOOK_RETRY_SECONDS",
        1.0,
        "First retry delay of a failed webhook delivery; it doubles per attempt, up to an hour.",
    )
    webhook_timeout_seconds: float = _setting(
        "ASHIATO_WEBHOOK_TIMEOUT_SECONDS",
        5.0,
        "Longest one webhook delivery may take (connect to last byte) before it counts as "
        "failed; a slow receiver then waits out its own backoff, never the others'.",
    )
    webhook_allow_private: bool = _setting(
        "ASHIATO_WEBHOOK_ALLOW_PRIVATE",
        False,
        "Allow webhook URLs that are, or resolve to, this host or a private network "
        "(loopback, link-local, RFC 1918, ...): for in-house receivers and tests only.",
    )
    webhook_allow_http: bool = _setting(
        "ASHIATO_WEBHOOK_ALLOW_HTTP",
        False,
        "Allow plain `http://` webhook URLs (deliveries carry personal data: https by default).",
    )
    console_require_2fa: bool = _setting(
        "ASHIATO_CONSOLE_REQUIRE_2FA",
        False,
        "Console users with the `admin` or `legal` role must set up a TOTP second factor "
        "before they can use any page.",
    )
    log_level: str = _setting("ASHIATO_LOG_LEVEL", "info", "debug, info, warning or error.")
    access_log: bool = _setting(
        "ASHIATO_ACCESS_LOG", False, "Log one JSON line per request (method, path, status, ms)."
    )
    demo: bool = _setting(
        "ASHIATO_DEMO", False, "Serve the demo page at `/demo/` (used by `make run`)."
    )
    rollups: bool = _setting(
        "ASHIATO_ROLLUPS",
        True,
        "Keep the dashboard's roll-ups, counting committed events every second. Off (for "
        "measuring their cost), the dashboard reads raw events; on again, they catch up.",
    )

    @property
    def tag_url(self) -> str:
        base = self.public_url or f"http://{self.host}:{self.port}"
        return base.rstrip("/") + "/t.js"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, when the URL names SQLite."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url[len(prefix) :])

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) over ``env_file``."""
        env = dict(os.environ if environ is None else environ)
        path = env_file or Path(env.get("ASHIATO_ENV_FILE", ".env"))
        values = {**read_env_file(path), **env}
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = values.get(f.metadata["env"])
            if raw is not None and raw != "":
                kwargs[f.name] = _parse(f, raw)
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**kwargs)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("ASHIATO_DATABASE_URL must start with sqlite:/// or postgresql://")
        positive = (
            "port",
            "workers",
            "max_body_bytes",
            "max_batch_events",
            "batch_max_events",
            "retention_events_days",
            "retention_visitors_days",
            "retention_leads_days",
            "retention_receipts_days",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env_of(name)} must be at least 1")
        if self.queue_max_events < self.batch_max_events:
            raise ConfigError("ASHIATO_QUEUE_MAX_EVENTS must be at least ASHIATO_WRITER_BATCH")
        if not self.webhook_timeout_seconds > 0:
            raise ConfigError("ASHIATO_WEBHOOK_TIMEOUT_SECONDS must be more than 0")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError("ASHIATO_LOG_LEVEL must be debug, info, warning or error")


def documented_variables() -> dict[str, str]:
    """Every variable Settings reads, with its help text (for the README and its test)."""
    return {f.metadata["env"]: f.metadata["help"] for f in dataclasses.fields(Settings)}


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.__class__.__name__}") from exc
    values: dict[str, str] = {}
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected KEY=value")
        values[key.strip()] = value.strip().strip("\"'")
    return values


def _env_of(name: str) -> str:
    return str(Settings.__dataclass_fields__[name].metadata["env"])


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_networks(raw: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip())


# type annotation -> (parser, what a valid value looks like); the raw value is never
# echoed back, because some settings are secrets.
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "int": (int, "an integer"),
    "float": (float, "a number"),
    "bool": (_parse_bool, "true or false"),
    "str": (str, "text"),
    "tuple[IPNetwork, ...]": (_parse_networks, "comma-separated IP addresses or CIDRs"),
}


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    parser, expected = _PARSERS.get(str(f.type), (str, "text"))
    try:
        return parser(raw)
    except ValueError:
        raise ConfigError(f"{f.metadata['env']} must be {expected}") from None
