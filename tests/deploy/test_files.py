"""The deployment files are accepted by the tools that will read them: nginx, Caddy,
systemd (verify and its security review), and, where no engine runs here, a structural
reading of the container files. The settings example and the guide match the code."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.proxies import (
    DEPLOY,
    nginx_command,
    nginx_layout,
    nginx_main,
    require,
    self_signed,
)
from tests.servers import ROOT
from tracker.cli import build_parser
from tracker.settings import Settings, documented_variables

CADDYFILES = ("Caddyfile.subdomain", "Caddyfile.path", "Caddyfile.compose")
PRODUCTION_ASHIATO = "/opt/ashiato/bin/ashiato"


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


@pytest.mark.parametrize("layout", ["subdomain", "path"])
def test_nginx_accepts_each_layout(tmp_path: Path, layout: str) -> None:
    require("nginx", "nginx")
    cert, key = self_signed(tmp_path, "t.example.co.jp", "www.example.co.jp")
    server = tmp_path / f"ashiato-{layout}.conf"
    server.write_text(nginx_layout(layout, cert=cert, key=key, logs=tmp_path))
    config = nginx_main(tmp_path, [DEPLOY / "nginx/ashiato-upstream.conf", server])
    result = run(nginx_command(config, "-t"))
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr


@pytest.mark.parametrize("name", CADDYFILES)
def test_caddy_accepts_each_caddyfile_as_formatted(tmp_path: Path, name: str) -> None:
    caddy = require("caddy", "caddy")
    path = DEPLOY / "caddy" / name
    home = str(tmp_path)
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)
    checked = run([caddy, "validate", "--adapter", "caddyfile", "--config", str(path)], env=env)
    assert checked.returncode == 0, checked.stderr
    assert "Valid configuration" in checked.stdout + checked.stderr
    formatted = run([caddy, "fmt", str(path)], env=env)
    assert formatted.stdout == path.read_text(), f"run `caddy fmt --overwrite {path}`"


def installed_ashiato() -> str:
    found = Path(sys.executable).parent / "ashiato"
    assert found.exists(), f"{found} missing: install the package (`make test` does)"
    return str(found)


def test_systemd_unit_verifies_and_is_confined(tmp_path: Path) -> None:
    systemd_analyze = require("systemd-analyze", "systemd")
    text = (DEPLOY / "ashiato.service").read_text()
    execs = re.findall(r"^ExecStart(?:Pre)?=(\S+)", text, re.MULTILINE)
    assert execs == [PRODUCTION_ASHIATO] * 2
    # The one difference from production: the command exists on this machine.
    unit = tmp_path / "ashiato.service"
    unit.write_text(text.replace(PRODUCTION_ASHIATO, installed_ashiato()))
    verified = run([systemd_analyze, "verify", str(unit)])
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr  # e.g. "Unknown key ..., ignoring."
    # Exposure at most 2.0 of 10 ("OK"); the threshold counts in tenths.
    review = run([systemd_analyze, "security", "--offline=yes", "--threshold=20", str(unit)])
    assert review.returncode == 0, review.stdout[-2000:]

    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    assert settings["ExecStart"].endswith("serve --host 127.0.0.1 --port 8000 --workers 2")
    assert settings["ExecStartPre"].endswith("ashiato migrate")
    assert settings["EnvironmentFile"] == "/etc/ashiato/ashiato.env"
    assert (settings["KillSignal"], settings["Restart"]) == ("SIGTERM", "on-failure")
    # `serve` answers requests in flight for up to 30 s, then commits what is queued.
    assert int(settings["TimeoutStopSec"].removesuffix("s")) >= 45
    assert settings["User"] == "ashiato"
    assert settings["ProtectSystem"] == "strict"


def test_env_example_covers_every_setting_and_holds_no_key() -> None:
    lines = (DEPLOY / "ashiato.env.example").read_text().splitlines()
    named = {m.group(1) for line in lines if (m := re.match(r"^#? ?(ASHIATO_\w+)=", line))}
    assert set(documented_variables()) - named == set()
    assert set(named) - set(documented_variables()) <= {"ASHIATO_ENV_FILE"}
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert values.get("ASHIATO_MASTER_KEY", "") == ""
    # One format for systemd's EnvironmentFile=, compose's env_file: and ashiato's reader.
    for key, value in values.items():
        assert re.fullmatch(r"ASHIATO_[A-Z0-9_]+", key), key
        assert not re.search(r"[\"'#\s]", value), f"{key}: no quotes, spaces or comments"
    settings = Settings.from_env({}, env_file=DEPLOY / "ashiato.env.example")
    assert settings.dev is False
    # Three places, backed up apart: the key file, the key store, the data.
    assert settings.sqlite_path is not None
    assert settings.master_key_file.startswith("/etc/ashiato/")
    assert settings.keystore_url != settings.database_url
    assert not settings.keystore_url.startswith(f"sqlite:///{settings.sqlite_path.parent}/")
    assert "127.0.0.1" in {str(n.network_address) for n in settings.trusted_proxies}


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML (a schemathesis dependency) reads it")
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_compose_runs_collectors_on_postgresql_behind_caddy() -> None:
    spec = compose()
    services = spec["services"]
    collector = services["collector"]
    assert collector["command"][:4] == ["ashiato", "serve", "--host", "0.0.0.0"]
    env = collector["environment"]
    assert env["ASHIATO_DATABASE_URL"].startswith("postgresql://")
    assert env["ASHIATO_KEYSTORE_URL"].startswith("postgresql://")
    assert env["ASHIATO_KEYSTORE_URL"].endswith("/ashiato_keys")
    assert env["ASHIATO_RETENTION_INTERVAL_SECONDS"] == "0"  # one retention service instead
    # Only Caddy is believed about X-Forwarded-*, at the address it is pinned to.
    caddy = services["caddy"]
    assert env["ASHIATO_TRUSTED_PROXIES"] == caddy["networks"]["backend"]["ipv4_address"]
    # Data, key store and master key: three volumes, backed up apart.
    volume = {name: services[name]["volumes"][0].split(":")[0] for name in ("db", "keys-db")}
    master = [v.split(":")[0] for v in collector["volumes"] if "/master" in v]
    assert len({volume["db"], volume["keys-db"], *master}) == 3
    assert all(name in spec["volumes"] for name in [*volume.values(), *master])
    assert collector["volumes"][0].endswith(":ro")  # the master key, read-only
    assert collector["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert int(collector["stop_grace_period"].removesuffix("s")) >= 45
    for mount in caddy["volumes"]:
        if mount.startswith("./"):
            assert (DEPLOY / mount.split(":")[0]).exists(), mount
    build = collector["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Containerfile"


def test_containerfile_builds_a_slim_non_root_image() -> None:
    text = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ")
    instructions = [
        line.split(None, 1) for line in text.splitlines() if re.match(r"^[A-Z]+ ", line)
    ]
    stages = [args for op, args in instructions if op == "FROM"]
    assert stages
    assert all(s.startswith("python:3.11-slim") for s in stages)
    user = [args for op, args in instructions if op == "USER"]
    assert user
    assert not user[-1].startswith(("root", "0"))
    [health] = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert "/healthz" in health
    [cmd] = [args for op, args in instructions if op == "CMD"]
    assert '"serve", "--host", "0.0.0.0"' in cmd
    ignored = (DEPLOY / "Containerfile.dockerignore").read_text().splitlines()
    for op, args in instructions:
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source}" in ignored, f"{source} is excluded from the build context"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_guide_names_real_files_and_commands() -> None:
    guide = (DEPLOY / "DEPLOY.md").read_text()
    for path in set(re.findall(r"\bdeploy/[\w./-]*\w", guide)):
        assert (ROOT / path).exists(), f"DEPLOY.md names {path}, which does not exist"
    commands = subcommands(build_parser())
    # `ashiato CMD SUB` in code blocks and in backticks: real commands, real arguments.
    blocks = re.findall(r"```sh\n(.*?)```", guide, re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", guide, flags=re.DOTALL))
    command = re.compile(r"(?:^|[\s/])ashiato ([a-z]+)(?: ([a-z]+))?(?![\w/.:-])", re.MULTILINE)
    used = command.findall("\n".join(blocks + inline))
    assert len(used) > 10
    for name, sub in used:
        if name == "env":  # sudo -u ashiato env ...
            continue
        assert name in commands, f"DEPLOY.md: no command `ashiato {name}`"
        nested = subcommands(commands[name])
        if nested:
            assert sub in nested, f"DEPLOY.md: no command `ashiato {name} {sub}`"
