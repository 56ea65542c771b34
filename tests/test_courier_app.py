"""The courier app's pages: the shell for couriers only, the service worker from its own scope, the
web manifest with its icons; Vietnamese first, laid out for a 360 px phone."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from conftest import login
from web_helpers import make_user

from delivery_service.accounts.models import Role

STATIC = Path(__file__).resolve().parents[1] / "delivery_service" / "static"


def test_anonymous_people_are_sent_to_log_in_and_back(client):
    resp = client.get("/courier/")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/login?next=%2Fcourier%2F") or \
        resp.headers["Location"].endswith("/login?next=/courier/")


@pytest.mark.parametrize("username", ["counter", "supervisor", "admin"])
def test_other_roles_get_403(client, username):
    login(client, username)
    assert client.get("/courier/").status_code == 403


def test_the_shell_for_a_courier(client):
    login(client, "courier")
    resp = client.get("/courier/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert re.search(r'<meta name="viewport" content="width=device-width, initial-scale=1[^"]*">', html)
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', html)
    assert '<link rel="manifest" href="/courier/manifest.webmanifest">' in html
    assert '<script type="module" src="/static/courier/app.js"></script>' in html
    # Vietnamese first: labels of the page and the strings handed to the script
    assert 'lang="vi"' in html and "Quét nhãn hoặc nhập số hiệu bưu gửi" in html
    assert "Ghi nhận đã phát" in html and "Tiếng Việt" in html and "English" in html
    strings = json.loads(re.search(r'<script type="application/json" id="courier-strings">(.*?)</script>',
                                   html, re.S).group(1))
    assert strings["outbox_pending"] == "chờ gửi: %(num)s" and strings["outbox_sent"] == "đã gửi"
    assert strings["status_delivered"] == "Đã phát"
    # each stop says what it is for (app.js: t(`leg_${order.leg}`)): a pickup or a delivery
    assert (strings["leg_dossier"], strings["leg_result"]) == ("Lấy hồ sơ", "Trả kết quả")
    script = (STATIC / "courier" / "app.js").read_text(encoding="utf-8")
    assert "order.leg ??" in script and "t(`leg_${legOf(order)}`)" in script
    # the regions the script fills in, and a photo input that opens the camera
    for part in ('id="stops"', 'id="scan-input"', 'id="outbox-badge"', 'id="sheet"', 'id="d-sign"',
                 'capture="environment"', 'accept="image/*"'):
        assert part in html, part
    # its own CSP: blob: previews and camera video, still no inline script
    csp = resp.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:" in csp and "script-src" not in csp and "default-src 'self'" in csp
    assert resp.headers["Cache-Control"] == "no-store"


def test_the_shell_in_english(client):
    make_user("phat", role=Role.COURIER, counter_code=None, locale="en")
    login(client, "phat")
    html = client.get("/courier/").get_data(as_text=True)
    assert 'lang="en"' in html and "Scan the label or type the item ID" in html
    assert "Bưu tá – Phát kết quả TTHC" not in html  # the manifest's name, not the page's


def test_service_worker_is_served_from_its_scope(client):
    resp = client.get("/courier/sw.js")
    assert resp.status_code == 200
    assert resp.mimetype == "text/javascript"
    assert resp.headers["Cache-Control"] == "no-cache"
    body = resp.get_data(as_text=True)
    assert "__VERSION__" not in body and "__STATIC__" not in body
    assert re.search(r'const VERSION = "[0-9a-f]{12}"', body) and 'const STATIC = "/static"' in body
    # writes are never cached; the run is network-first
    assert 'request.method !== "GET"' in body and "/api/v1/courier/run" in body


def test_the_shell_and_its_worker_share_one_version(client):
    first = re.search(r'VERSION = "(\w+)"', client.get("/courier/sw.js").get_data(as_text=True)).group(1)
    again = re.search(r'VERSION = "(\w+)"', client.get("/courier/sw.js").get_data(as_text=True)).group(1)
    assert first == again
    login(client, "courier")
    assert f'name="courier-version" content="{first}"' in client.get("/courier/").get_data(as_text=True)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_manifest_makes_the_app_installable(client):
    resp = client.get("/courier/manifest.webmanifest")
    assert resp.status_code == 200 and resp.mimetype == "application/manifest+json"
    manifest = json.loads(resp.get_data(as_text=True))
    assert manifest["name"] == "Bưu tá – Phát kết quả TTHC"
    assert manifest["start_url"] == "/courier/" and manifest["scope"] == "/courier/"
    assert manifest["display"] == "standalone" and re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = {}
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as got:
            assert got.status_code == 200 and got.mimetype == "image/png", icon["src"]
            width, height = _png_size(got.data)
        assert icon["sizes"] == f"{width}x{height}"
        sizes.setdefault(icon["purpose"], set()).add(width)
    assert sizes["any"] == {192, 512} and 512 in sizes["maskable"]


def test_script_and_styles_are_plain_static_files(client):
    with client.get("/static/courier/app.js") as js:
        assert js.status_code == 200 and "javascript" in js.mimetype
        source = js.get_data(as_text=True)
    for needle in ('const API = "/api/v1/courier"', "`${API}/sync`", "`${API}/files/${file.id}?",
                   "indexedDB.open", "crypto.randomUUID", "BarcodeDetector", "maximumAge: 60000", "timeout: 5000", 'sync?.register("outbox")',
                   'addEventListener("online"', "visibilitychange"):
        assert needle in source, needle
    assert not [line for line in source.splitlines() if line.startswith("import ")]  # one module, no bundler
    with client.get("/static/courier/app.css") as resp:
        css = resp.get_data(as_text=True)
    assert "min-height: 44px" in css
    # nothing in the layout is wider than a 360 px phone
    widths = [int(w) for w in re.findall(r"(?<![-\w])(?:min-)?width:\s*(\d+)px", css)]
    assert all(w <= 360 for w in widths), widths
