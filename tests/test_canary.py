"""Canary values written through the real server never appear in plaintext on disk or in logs."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import orjson
import pytest

from tests import postgres
from tests.conftest import SITE_ORIGIN, Deployment, make_deployment
from tests.servers import cli_json, leaks_in_logs

# Every test here runs once per backend, as the module builds deployments (the few that
# need no database included).
pytestmark = pytest.mark.usefixtures("backend")

LEADS = 12


def canaries(n: int) -> dict[str, str]:
    tag = secrets.token_hex(6)
    return {
        "email": f"canary.{tag}.{n}@example.jp",
        "name": f"Canaryname{tag}{n}",
        "company": f"Canarycorp{tag}{n}",
        "phone": f"+81-3-{n:04d}-{tag[:4]}",
        "department": f"Canarydept{tag}{n}",
    }


def files_of(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".key")]


def stored_files(dep: Deployment) -> list[Path]:
    """Every file holding the deployment's data: with SQLite its folder (database, -wal,
    -shm, key store, logs); with PostgreSQL also the server's files of its two databases
    and the WAL segments written since it was made."""
    files = files_of(dep.tmp)
    if dep.backend == "postgresql":
        files += postgres.files_of([dep.database_url, dep.keystore_url], dep.created)
    return files


def hits(paths: list[Path], needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in paths:
        data = path.read_bytes().lower()
        for needle in needles:
            for form in {needle.lower().encode(), needle.lower().encode("utf-16-le")}:
                if form in data:
                    found.append((path.name, needle))
    return found


def test_personal_data_is_never_plaintext_on_disk_or_in_logs(backend: str, tmp_path: Path) -> None:
    dep = make_deployment(
        tmp_path,
        backend=backend,
        ASHIATO_TRUSTED_PROXIES="127.0.0.1",
        ASHIATO_ACCESS_LOG="true",
        ASHIATO_LOG_LEVEL="debug",
    )
    key = cli_json(dep.env, "apikey", "create", "canary", "--scope", "read", "--scope", "identify")[
        "key"
    ]
    dep.server.start()
    auth = {"Authorization": f"Bearer {key}"}
    written: list[dict[str, str]] = []
    for n in range(LEADS):
        traits = canaries(n)
        written.append(traits)
        vid = secrets.token_hex(16)
        full_ip = f"198.51.{100 + n}.{200 + n}"
        if n % 2:  # half through the tag's beacon, half through the server API
            beacon = dep.beacon(vid=vid, type="identify", traits=traits, form="contact")
            response = dep.post(beacon, **{"X-Forwarded-For": full_ip})
            assert response.status_code == 204
        else:
            response = httpx.post(
                f"{dep.url}/api/v1/identify",
                headers=auth,
                json={"site": dep.site_key, "vid": vid, "traits": traits},
            )
            assert response.status_code == 200, response.text
        written[-1]["ip"] = full_ip
    # A malformed identify must not echo personal data in its error either.
    bad = dep.beacon(type="identify", traits={"email": "Canaryerror-no-at-sign", "x": 1})
    assert "Canaryerror" not in dep.post(bad).text

    # Lookup by email, typed full-width and upper case (a Japanese IME), finds each lead.
    for traits in written[:3]:
        wide = traits["email"].upper().translate(_FULL_WIDTH)
        found = httpx.get(f"{dep.url}/api/v1/leads/lookup", params={"email": wide}, headers=auth)
        assert found.status_code == 200, found.text
        assert (found.json()["name"], found.json()["company"]) == (
            traits["name"],
            traits["company"],
        )

    needles = [v for traits in written for k, v in traits.items() if k != "ip"]
    needles += [t["ip"] for t in written if t["ip"] and written.index(t) % 2]
    needles.append("Canaryerror")
    files = stored_files(dep)
    if dep.backend == "sqlite":
        assert {"ashiato.db-wal", "keystore.db", "server.log"} <= {p.name for p in files}
    else:
        assert "server.log" in {p.name for p in files}
        assert any(p.parent.name == "pg_wal" for p in files)
    assert hits(files, [SITE_ORIGIN]) != [], "control: the search finds what is there"
    running = hits(files, needles)  # database, its WAL (and -shm), key store, logs
    dep.server.stop()
    stopped = hits(stored_files(dep), needles)
    assert running == [], running
    assert stopped == [], stopped
    if dep.backend == "sqlite":
        assert (tmp_path / "ashiato.db").stat().st_size > 0
    log_lines = [orjson.loads(line) for line in dep.server.logs().splitlines() if line]
    assert any(line.get("path") == "/collect" for line in log_lines), "access log was on"


_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def test_a_full_ip_behind_a_trusted_proxy_is_only_stored_truncated(
    backend: str, tmp_path: Path
) -> None:
    dep = make_deployment(tmp_path, backend=backend, ASHIATO_TRUSTED_PROXIES="127.0.0.1")
    dep.server.start()
    beacon = dep.beacon()
    assert dep.post(beacon, **{"X-Forwarded-For": "203.0.113.199"}).status_code == 204
    dep.server.stop()
    assert hits(stored_files(dep), ["203.0.113.199"]) == []
    assert hits(stored_files(dep), ["203.0.113.0"]) != []  # the /24 is what is kept


def test_the_suite_wide_log_scan_finds_each_kind_of_leak(tmp_path: Path) -> None:
    """The scan the session runs over every server log (tests/conftest.py) can fail."""
    log = tmp_path / "server.log"
    log.write_text(
        '{"message": "identified", "lead": "ld_1"}\n'
        '{"message": "bad", "email": "taro.yamada@example.co.jp"}\n'
        "Traceback (most recent call last):\n"
        '{"message": "request", "path": "/p.gif?url=https%3A%2F%2Fx"}\n'
        '{"message": "request", "path": "/collect"}\n'
    )
    leaks = leaks_in_logs([log, tmp_path / "missing.log"])
    assert [leak.split(": ", 1)[0] for leak in leaks] == [f"{log}:{n}" for n in (2, 3, 4)]
    assert "yamada" not in "".join(leaks)  # the report itself does not repeat the value
