"""Configuration: validated at start; the development secret is one secret for all processes."""

from __future__ import annotations

import multiprocessing

import pytest

from delivery_service import config


def _secret(instance: str, queue: multiprocessing.Queue) -> None:
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


@pytest.mark.parametrize("override", [{"ITEM_ID_PREFIX": "SA"}, {"ITEM_ID_PREFIX": "R1"},
                                      {"ITEM_ID_COUNTRY": "VNM"}, {"ENV": "production"}])
def test_bad_settings_stop_the_start(tmp_path, monkeypatch, override):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError):
        config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", **override})


def test_prefix_is_upper_cased(tmp_path):
    cfg = config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "ITEM_ID_PREFIX": "rr", "SECRET_KEY": "x"})
    assert cfg["ITEM_ID_PREFIX"] == "RR"
