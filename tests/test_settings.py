from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.settings import Settings, documented_variables

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_and_environment_parsing(tmp_path: Path) -> None:
    settings = Settings.from_env({}, env_file=tmp_path / "none")
    assert settings.database_url == "sqlite:///./data/ashiato.db"
    assert settings.sqlite_path == Path("data/ashiato.db")
    custom = Settings.from_env(
        {
            "ASHIATO_PORT": "9000",
            "ASHIATO_ACCESS_LOG": "yes",
            "ASHIATO_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "ASHIATO_WRITER_INTERVAL_MS": "0.5",
        },
        env_file=tmp_path / "none",
    )
    assert (custom.port, custom.access_log, custom.batch_interval_ms) == (9000, True, 0.5)
    assert custom.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nASHIATO_PORT=9100\nexport ASHIATO_HOST='0.0.0.0'\n")
    settings = Settings.from_env({"ASHIATO_PORT": "9200"}, env_file=env_file)
    assert (settings.port, settings.host) == (9200, "0.0.0.0")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ASHIATO_PORT": "eighty"}, "ASHIATO_PORT must be an integer"),
        ({"ASHIATO_PORT": "0"}, "ASHIATO_PORT must be at least 1"),
        ({"ASHIATO_ACCESS_LOG": "maybe"}, "ASHIATO_ACCESS_LOG must be true or false"),
        ({"ASHIATO_DATABASE_URL": "mysql://x"}, "ASHIATO_DATABASE_URL must start with"),
        ({"ASHIATO_TRUSTED_PROXIES": "10.0.0.0/99"}, "ASHIATO_TRUSTED_PROXIES must be"),
        ({"ASHIATO_LOG_LEVEL": "loud"}, "ASHIATO_LOG_LEVEL must be"),
    ],
)
def test_bad_settings_are_clear_errors_without_the_value(
    env: dict,
    needle: str,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, env_file=tmp_path / "none")
    assert needle in str(caught.value)
    for value in env.values():
        assert value not in str(caught.value) or value in needle


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    table_rows = set(re.findall(r"^\| `(ASHIATO_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert set(documented_variables()) <= table_rows, set(documented_variables()) - table_rows
