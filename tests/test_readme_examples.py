"""The README's examples work as pasted: the curl call that creates an order is run by bash against
the service served on a local port (SQLite and PostgreSQL), then sent again as a retry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import REQUIRE
from test_courier_browser import live_server  # noqa: F401  (fixture: the app served in a thread)

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder

README = Path(__file__).resolve().parents[1] / "README.md"
README_ADDRESS = "http://127.0.0.1:5000"


def readme_order_example() -> str:
    """The README's shell block that creates an order with curl."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if "curl" in b and "/api/v1/orders" in b and "dossier_code" in b]
    assert len(found) == 1, "the README has one curl example creating an order"
    return found[0]


def run_example(script: str, origin: str, token: str) -> tuple[int, dict]:
    """Run the block with bash; curl also writes the status code on a last line (-w), nothing else
    of the block changes but the address the service listens at."""
    assert f"{README_ADDRESS}/api/v1/orders" in script and script.count("curl -s ") == 1
    script = script.replace(README_ADDRESS, origin).replace("curl -s ", "curl -s -w '\\n%{http_code}' ", 1)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "TOKEN": token, "LC_ALL": "C.UTF-8"})
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_readme_curl_example_creates_an_order_then_a_retry_returns_it(app, live_server, token):  # noqa: F811
    if shutil.which("curl") is None or shutil.which("bash") is None:
        if REQUIRE:
            pytest.fail("curl and bash are needed to run the README's example")
        pytest.skip("curl or bash is missing")
    script = readme_order_example()
    status, order = run_example(script, live_server, token)
    assert status == 201, order
    assert re.fullmatch(r"RH\d{9}VN", order["item_id"]) and order["status"] in ("assigned", "received")
    assert order["recipient"]["name"] == "Nguyễn Thị Hoa" and order["dossier_code"].startswith("000.00.18.H55-")
    again_status, again = run_example(script, live_server, token)
    assert again_status == 200 and again["item_id"] == order["item_id"]  # a retry: the stored order
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == 1
