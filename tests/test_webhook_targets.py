"""Where webhooks may go: public addresses, and networks an operator lists in WEBHOOK_ALLOWED_NETWORKS;
never this machine, the LAN or the cloud's metadata service (server-side request forgery), checked when
the address is set and again at every connection a delivery makes (a name may resolve elsewhere since)."""

from __future__ import annotations

import ipaddress
import pickle
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import order_payload
from test_webhooks import Receiver, from_the_start

from delivery_service.accounts.models import ApiClient, User
from delivery_service.accounts.services import actor_for_token
from delivery_service.admin import org_services
from delivery_service.cli import main
from delivery_service.config import ConfigError, load
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.webhooks import services
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

PUBLIC_ONLY = pytest.mark.config(WEBHOOK_ALLOWED_NETWORKS="")  # the default (the tests' app allows loopback)
PROVINCE_LAN = pytest.mark.config(WEBHOOK_ALLOWED_NETWORKS="10.20.0.0/16")
REFUSED = (r"The address resolves to (?P<address>[0-9a-f.:]+), a loopback/private/link-local address: "
           r"webhooks go to public addresses only \(an operator can allow a network with "
           r"WEBHOOK_ALLOWED_NETWORKS\)\.")
UNRESOLVED = "The host name {host} does not resolve to an address."
NOT_ALLOWED = "address not allowed"


def _message(url: str) -> str:
    """The one message set_endpoint answers for ``url`` (it must be refused)."""
    with pytest.raises(InvalidInput) as refused:
        services.set_endpoint(_demo_client(), url)
    db.session.rollback()
    [message] = refused.value.errors["url"]
    return message


def _demo_client() -> int:
    from flask import current_app

    return actor_for_token(current_app.config["DEMO_TOKEN"]).client_id


def _stored_url() -> str | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(WebhookEndpoint.url).where(WebhookEndpoint.api_client_id == _demo_client()))


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names → the addresses they resolve to (an empty list: the name does not resolve); other names
    and addresses go to the real resolver. No name server is asked."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in names:
            return real(host, port, *args, **kwargs)
        if not names[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port or 80) if ":" not in a else (a, port or 80, 0, 0)) for a in names[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


# --- set: the API client's endpoint (services.set_endpoint, as the CLI and the admin page) ------------

@PUBLIC_ONLY
@pytest.mark.parametrize(("url", "address"), [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # the cloud's metadata service
    ("http://127.0.0.1:6379/", "127.0.0.1"),  # Redis on this machine
    ("http://10.0.0.5/hooks", "10.0.0.5"),
    ("http://[::1]:8080/hooks", "::1"),
    ("http://0.0.0.0:5432/", "0.0.0.0"),  # the unspecified address reaches this machine
    ("http://100.64.0.1/hooks", "100.64.0.1"),  # carrier-grade NAT
    ("http://[::ffff:127.0.0.1]/hooks", "::ffff:127.0.0.1"),  # IPv4-mapped: judged by its IPv4 address
    ("http://[fe80::1]/hooks", "fe80::1"),
    ("http://[fd00::5]/hooks", "fd00::5"),
    ("http://224.0.0.1/hooks", "224.0.0.1"),
])
def test_an_internal_address_is_refused_when_set(app, url, address):
    message = _message(url)
    match = re.fullmatch(REFUSED, message)
    assert match and match["address"] == address, message
    assert _stored_url() is None


@PUBLIC_ONLY
def test_a_name_resolving_to_loopback_is_refused(app):
    match = re.fullmatch(REFUSED, _message("http://localhost:6379/"))
    assert match and ipaddress.ip_address(match["address"]).is_loopback
    assert _stored_url() is None


@PUBLIC_ONLY
def test_a_name_is_refused_if_any_of_its_addresses_is(app, resolver):
    resolver["counter.example.vn"] = ["93.184.216.34", "10.0.0.5"]
    message = _message("https://counter.example.vn/hooks")
    assert re.fullmatch(REFUSED, message) and "10.0.0.5" in message


@PUBLIC_ONLY
def test_a_name_that_does_not_resolve_is_refused(app, resolver):
    resolver["nowhere.example.vn"] = []
    assert _message("https://nowhere.example.vn/hooks") == UNRESOLVED.format(host="nowhere.example.vn")


@PUBLIC_ONLY
@pytest.mark.parametrize("url", ["ftp://93.184.216.34/", "http:///hooks", "http://93.184.216.34:99999/",
                                 "http://93.184.216.34:0/", "http://93.184.216.34:port/",
                                 "http://93.184.216.34/" + "x" * 500])
def test_not_an_http_address_keeps_its_message(app, url):
    assert _message(url) == "Must be an http:// or https:// address of at most 500 characters."


@PUBLIC_ONLY
@pytest.mark.parametrize("url", ["http://93.184.216.34/hooks", "https://[2606:2800:220:1:248:1893:25c8:1946]/hooks",
                                 "https://counter.example.vn:8443/hooks"])
def test_a_public_address_is_accepted(app, resolver, url):
    resolver["counter.example.vn"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    services.set_endpoint(_demo_client(), url)
    db.session.commit()
    assert _stored_url() == url


@PROVINCE_LAN
def test_a_listed_network_is_accepted_and_only_it(app):
    services.set_endpoint(_demo_client(), "http://10.20.1.2:8080/hooks")
    db.session.commit()
    assert _stored_url() == "http://10.20.1.2:8080/hooks"
    for url in ("http://10.21.0.1/hooks", "http://127.0.0.1:6379/", "http://169.254.169.254/latest/meta-data/"):
        assert re.fullmatch(REFUSED, _message(url)), url
    assert _stored_url() == "http://10.20.1.2:8080/hooks"


@pytest.mark.config(WEBHOOK_ALLOWED_NETWORKS="0.0.0.0/0,::/0")
def test_the_metadata_address_opens_only_when_listed_itself(app):
    """Even "everything" leaves link-local (the metadata service) shut; loopback it opens."""
    assert re.fullmatch(REFUSED, _message("http://169.254.169.254/latest/meta-data/"))
    assert re.fullmatch(REFUSED, _message("http://[fe80::1]/"))
    services.set_endpoint(_demo_client(), "http://127.0.0.1:8080/hooks")
    db.session.commit()
    assert _stored_url() == "http://127.0.0.1:8080/hooks"


def test_address_allowed_is_the_one_rule():
    lan = (ipaddress.ip_network("10.20.0.0/16"),)
    link = (ipaddress.ip_network("169.254.169.254/32"),)
    assert services.address_allowed("93.184.216.34") and services.address_allowed("2606:2800:220:1::1")
    assert services.address_allowed("::ffff:93.184.216.34")  # mapped: as its IPv4 address
    assert services.address_allowed("64:ff9b::5db8:d822")  # NAT64 of 93.184.216.34
    for address in ("127.0.0.1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
                    "fc00::1", "ff02::1", "::ffff:10.0.0.5", "64:ff9b::7f00:1", "2002:7f00:1::1", "::7f00:1",
                    "not an address"):
        assert not services.address_allowed(address), address
        assert not services.address_allowed(address, lan), address
    assert services.address_allowed("10.20.1.2", lan) and services.address_allowed("::ffff:10.20.1.2", lan)
    assert not services.address_allowed("10.21.0.1", lan)
    assert services.address_allowed("169.254.169.254", link)
    assert not services.address_allowed("169.254.169.254", (ipaddress.ip_network("0.0.0.0/0"),))
    assert not services.address_allowed("0.0.0.0", (ipaddress.ip_network("0.0.0.0/0"),))


# --- the setting ------------------------------------------------------------------------------------------

def test_the_setting_is_parsed_and_checked_once(tmp_path, monkeypatch):
    assert load(str(tmp_path))["WEBHOOK_ALLOWED_NETWORKS"] == ()
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.20.0.0/16, fd00:1::/64,192.168.5.7")
    assert load(str(tmp_path))["WEBHOOK_ALLOWED_NETWORKS"] == (
        ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/64"),
        ipaddress.ip_network("192.168.5.7/32"))
    for bad in ("10.20.1.0/16", "lan", "10.0.0.0/33"):
        monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", bad)
        with pytest.raises(ConfigError, match="WEBHOOK_ALLOWED_NETWORKS"):
            load(str(tmp_path))


# --- the other ways to set it --------------------------------------------------------------------------

@PUBLIC_ONLY
def test_the_cli_and_the_admin_page_refuse_it_too(app):
    result = app.test_cli_runner().invoke(main, ["api-clients", "webhook", str(_demo_client()), "--url",
                                                 "http://169.254.169.254/latest/meta-data/"])
    assert result.exit_code == 1 and re.search(REFUSED, result.output), result.output
    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    client = db.session.get(ApiClient, _demo_client())
    with pytest.raises(InvalidInput) as refused:
        org_services.set_webhook(admin, client, "http://127.0.0.1:6379/")
    assert list(refused.value.errors) == ["url"]
    db.session.rollback()
    assert _stored_url() is None


# --- delivery: checked again where it connects ---------------------------------------------------------

@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A real socket listening on 127.0.0.1: it must never see a connection."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.3)
    yield sock
    sock.close()


def _no_connection(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return True
    conn.close()
    return False


@PUBLIC_ONLY
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_stored_internal_address_is_not_connected_to(app, client, auth, listener, host):
    """The endpoint was set to a public address; its stored URL now points at this machine (as if its
    name had come to resolve here): the delivery connects nowhere and fails, "address not allowed"."""
    assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    client_id = _demo_client()
    endpoint, _secret = services.set_endpoint(client_id, "http://93.184.216.34/hooks")
    url = f"http://{host}:{listener.getsockname()[1]}/hooks"
    db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id).values(url=url))
    db.session.commit()
    from_the_start(client_id)
    report = services.deliver(endpoint.id, force=True)
    assert (report.outcome, report.reason) == ("failed", NOT_ALLOWED)
    db.session.expire_all()
    errors = db.session.scalars(sa.select(WebhookDelivery.error).where(WebhookDelivery.endpoint_id == endpoint.id))
    assert list(errors) == [NOT_ALLOWED]
    assert _no_connection(listener)


def test_the_transport_connects_only_to_an_allowed_address(resolver, listener):
    """No app: the transport alone. A name whose addresses are all refused is not connected to; one with
    a refused and an allowed address goes to the allowed one only."""
    port = listener.getsockname()[1]
    sent = services.HttpTransport().post(f"http://127.0.0.1:{port}/hooks", b"{}", {}, 1.0, 1.0)
    assert sent == services.Response(None, NOT_ALLOWED) and _no_connection(listener)
    receiver = Receiver()
    try:
        resolver["counter.lan"] = ["127.0.0.2", "127.0.0.1"]  # 127.0.0.2: refused, nothing listens there
        allowed = (ipaddress.ip_network("127.0.0.1/32"),)
        url = receiver.url.replace("127.0.0.1", "counter.lan")
        sent = services.HttpTransport(allowed).post(url, b'{"events":[]}', {"Content-Type": "application/json"},
                                                    1.0, 1.0)
        assert sent == services.Response(204, None) and len(receiver.requests) == 1
        resolver["counter.lan"] = ["10.0.0.5", "169.254.169.254"]
        assert services.HttpTransport(allowed).post(url, b"{}", {}, 1.0, 1.0) == services.Response(None, NOT_ALLOWED)
        resolver["counter.lan"] = []
        assert services.HttpTransport(allowed).post(url, b"{}", {}, 1.0, 1.0) == services.Response(None, "unknown host")
    finally:
        receiver.close()


# --- the refusals are coded: the admin page says them by code, not by reading the English ------------

@PUBLIC_ONLY
def test_a_refusal_carries_its_code_and_what_it_names(app, resolver):
    resolver["nowhere.example.vn"] = []
    for url, code, params in (
            ("ftp://93.184.216.34/", services.NOT_HTTP_URL, {}),
            ("https://nowhere.example.vn/hooks", services.UNRESOLVED_HOST, {"host": "nowhere.example.vn"}),
            ("http://10.0.0.5/hooks", services.ADDRESS_REFUSED, {"address": "10.0.0.5"})):
        message = _message(url)
        assert (message.code, message.params) == (code, params), url
        assert message == services.URL_PROBLEMS[code].format(**params)  # the API's and CLI's English
        assert pickle.loads(pickle.dumps(message)).params == params  # as it travels through rq


def test_the_admin_page_has_each_refusal_in_vietnamese_by_its_code():
    assert set(org_services.WEBHOOK_PROBLEMS_VI) == set(services.URL_PROBLEMS)
    said = org_services._webhook_problem(services.UrlProblem(services.UNRESOLVED_HOST, host="iGate.example.vn"))
    assert said.vi.startswith("Không tìm thấy máy chủ iGate.example.vn ")
    assert said.en == "The host name iGate.example.vn does not resolve to an address."
    said = org_services._webhook_problem(services.UrlProblem(services.ADDRESS_REFUSED, address="fd00::5"))
    assert said.vi.startswith("Địa chỉ này trỏ tới fd00::5, một địa chỉ nội bộ") and "fd00::5" in said.en
    said = org_services._webhook_problem(services.UrlProblem(services.NOT_HTTP_URL))
    assert said == ("Nhập địa chỉ http:// hoặc https:// (tối đa 500 ký tự).", services.URL_MESSAGE)


def test_ipv6_reserved_blocks_stay_refused():
    """is_global lets IPv6's reserved blocks through (they are not in its private list): address_allowed
    keeps refusing them."""
    for address in ("4000::1", "::7f00:1", "e000::1"):
        assert ipaddress.ip_address(address).is_global and not services.address_allowed(address), address
