"""Configuration: validated at start; the development secret is one secret for all processes."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from delivery_service import config


def _secret(instance: str, queue: multiprocessing.Queue) -> None:
    config.keep_instance_secret(instance)
    queue.put(config.load(instance, {"DATABASE_URL": "sqlite://"})["SECRET_KEY"])


def test_workers_starting_together_share_one_secret(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_secret, args=(str(tmp_path), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    secrets = {queue.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=30)
    assert len(secrets) == 1 and len(secrets.pop()) > 40
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary files left


def test_loading_the_settings_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    cfg = config.load(str(instance), {})
    assert cfg["SECRET_KEY"] and cfg["DATABASE_URL"].endswith("instance/delivery.sqlite3")
    assert not instance.exists()  # no folder, no secret_key: made when serving or opening the database
    config.keep_instance_secret(str(instance))
    assert config.load(str(instance), {})["SECRET_KEY"] == (instance / "secret_key").read_text().strip()


def test_commands_write_nothing_into_the_working_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    for args in (["--help"], ["db", "--help"], ["users", "--help"]):
        done = subprocess.run([str(Path(sys.executable).parent / "delivery-service"), *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override", [{"ITEM_ID_PREFIX": "SA"}, {"ITEM_ID_PREFIX": "R1"},
                                      {"ITEM_ID_COUNTRY": "VNM"}, {"ENV": "production"},
                                      {"TOTP_REQUIRED_ROLES": "admin,district"},
                                      {"SESSION_IDLE_MINUTES": 0}, {"SESSION_IDLE_MINUTES": 2000}])
def test_bad_settings_stop_the_start(tmp_path, monkeypatch, override):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError):
        config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", **override})


def test_totp_roles_are_role_names(tmp_path):
    cfg = config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "TOTP_REQUIRED_ROLES": " admin, district_officer "})
    assert cfg["TOTP_REQUIRED_ROLES"] == "admin,district_officer"


def test_prefix_is_upper_cased(tmp_path):
    cfg = config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "ITEM_ID_PREFIX": "rr", "SECRET_KEY": "x"})
    assert cfg["ITEM_ID_PREFIX"] == "RR"


def test_business_rules_check_interval_is_seconds_up_to_a_minute(tmp_path, monkeypatch):
    base = {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x"}
    assert config.load(str(tmp_path), base)["RULES_CHECK_S"] == 1.0
    monkeypatch.setenv("RULES_CHECK_S", "0.5")
    assert config.load(str(tmp_path), base)["RULES_CHECK_S"] == 0.5
    for bad in ("soon", "-1", "61"):
        monkeypatch.setenv("RULES_CHECK_S", bad)
        with pytest.raises(config.ConfigError):
            config.load(str(tmp_path), base)
