from __future__ import annotations

import json
from pathlib import Path

from tests.servers import base_env, run_cli


def test_site_add_and_list_in_json(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'db'}")
    created = json.loads(
        run_cli(
            env, "site", "add", "Shop", "--origin", "https://WWW.Example.co.jp/", "--json"
        ).stdout
    )
    assert created["origins"] == ["https://www.example.co.jp"]
    assert created["consent"] == "opt-in"  # the safe default
    assert created["site_key"] in created["snippet"]
    listed = json.loads(run_cli(env, "site", "list", "--json").stdout)
    assert [s["site_key"] for s in listed["sites"]] == [created["site_key"]]
    assert json.loads(run_cli(env, "migrate", "--json").stdout)["schema_version"] >= 1


def test_usage_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    env = base_env(f"sqlite:///{tmp_path / 'db'}")
    bad_origin = run_cli(env, "site", "add", "x", "--origin", "www.example.co.jp", check=False)
    assert bad_origin.returncode == 2
    assert "origin must be" in bad_origin.stderr
    assert "Traceback" not in bad_origin.stderr
    run_cli(env, "site", "add", "dup", "--origin", "https://a.jp")
    duplicate = run_cli(env, "site", "add", "dup", "--origin", "https://a.jp", check=False)
    assert duplicate.returncode == 2
    assert "already exists" in duplicate.stderr
    assert run_cli(env, "site", "add", check=False).returncode == 2
    assert run_cli(env, check=False).returncode == 2


def test_bad_configuration_exits_1(tmp_path: Path) -> None:
    env = base_env("mysql://nope", keys_dir=tmp_path / "keys")
    result = run_cli(env, "site", "list", check=False)
    assert result.returncode == 1
    assert "ASHIATO_DATABASE_URL" in result.stderr


def test_unwritable_database_is_a_clear_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    env = base_env(
        f"sqlite:///{tmp_path / 'file' / 'db'}", keys_dir=tmp_path / "keys", create=False
    )
    result = run_cli(env, "migrate", check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_site_keys_never_start_with_a_dash() -> None:
    # Keys are typed as arguments (`site write-key KEY`, `--site KEY`); a leading dash
    # reads as an option. token_urlsafe alone gives one such key in 64.
    from tracker.sites import new_site_key

    keys = [new_site_key() for _ in range(5_000)]
    assert not [k for k in keys if k.startswith("-")]
    assert all(len(k) == 16 for k in keys)
    assert len(set(keys)) == len(keys)
