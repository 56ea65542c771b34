"""``orders.fast_load.fast_load`` (the API's and the import's quick validation) against ``OrderIn().load``:
for every input, either the same output (value and type, field by field) or None, and then OrderIn
decides, so every refusal keeps OrderIn's messages. The usual bodies must take the fast path."""

from __future__ import annotations

import copy
import datetime as dt
import json
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import order_payload
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from delivery_service.orders.fast_load import (
    ADDRESS_CODE_KEYS,
    ADDRESS_TEXT_KEYS,
    PERSON_KEYS,
    TOP_KEYS,
    fast_load,
)
from delivery_service.orders.schemas import AddressIn, AuthorisedIn, OrderIn, RecipientIn

SCHEMA = OrderIn()


@pytest.fixture(scope="module")
def context() -> Iterator[None]:
    """OrderIn's date rule reads the service's time zone from the app's settings; no database."""
    app = Flask(__name__)
    app.config["SERVICE_TIMEZONE"] = "Asia/Ho_Chi_Minh"
    with app.app_context():
        yield


def _same(got: Any, expected: Any, where: str = "") -> None:
    assert type(got) is type(expected), (where, got, expected)
    if isinstance(expected, dict):
        assert list(sorted(got)) == list(sorted(expected)), (where, got, expected)
        for key in expected:
            _same(got[key], expected[key], f"{where}.{key}")
    else:
        assert got == expected, (where, got, expected)


def check(body: Any) -> bool:
    """fast_load gives OrderIn's output or None; True when it answered."""
    from delivery_service.localtime import local_today

    try:
        expected = SCHEMA.load(copy.deepcopy(body))
    except ValidationError:
        expected = None
    got = fast_load(copy.deepcopy(body), local_today())
    if got is None:
        return False
    assert expected is not None, ("fast_load accepted what OrderIn refuses", body, got)
    _same(got, expected)
    return True


def test_the_fields_known_are_orderins():
    """A field added to OrderIn or its nested schemas must be added to fast_load (else these fail)."""
    assert set(OrderIn().fields) == TOP_KEYS
    assert set(RecipientIn().fields) == set(AuthorisedIn().fields) == PERSON_KEYS
    assert set(AddressIn().fields) == ADDRESS_CODE_KEYS | ADDRESS_TEXT_KEYS


def _day(days: int) -> str:
    from delivery_service.localtime import local_today

    return (local_today() + dt.timedelta(days=days)).isoformat()


def _valid() -> list[dict[str, Any]]:
    """Bodies OrderIn accepts, of every shape the API documents."""
    p = order_payload
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hoa")
    return [
        p(),  # the bench's body
        p(appointment_date=_day(0)), p(appointment_date=_day(366)),
        p(direction="dossier_to_agency", appointment_date=None),
        {**p(direction="dossier_to_agency"), "appointment_date": None},
        p(direction="both"), p(direction="both", appointment_date=None),
        p(procedure_code=None), {**p(), "procedure_code": None}, {**p(), "procedure_code": ""},
        {**p(), "procedure_code": "   "},
        p(recipient={"name": "Lê Thị Cúc", "phone": "0905123456", "id_number": "123456789"}),
        p(recipient={"name": "Lê Thị Cúc", "phone": "0905123456", "id_number": "0123 4567 8901"}),
        p(recipient={"name": "Lê Thị Cúc", "phone": "0905123456", "id_number": ""}),
        p(recipient={"name": "Lê Thị Cúc", "phone": "0905123456", "id_number": None}),
        p(recipient={"name": "  Lê   Thị\tCúc ", "phone": " 0905123456 "}),
        p(recipient={"name": nfd, "phone": "+84905123456"}),
        p(recipient={"name": "Hoa", "phone": "090 512 3456"}),
        p(recipient={"name": "Hoa", "phone": "02553822123"}),  # a landline
        p(authorised_person={"name": "Trần Văn Bình"}),
        p(authorised_person={"name": "Trần Văn Bình", "phone": "0912345678", "id_number": "012345678901"}),
        p(authorised_person={"name": "Trần Văn Bình", "phone": "", "id_number": ""}),
        p(authorised_person={"name": "Trần Văn Bình", "phone": None, "id_number": None}),
        {**p(), "authorised_person": None},
        p(address={"province_code": "51", "district_code": "522", "commune_code": "21025", "detail": "12 Hùng Vương"}),
        p(address={"province_code": "51", "district_code": None, "commune_code": "21025", "detail": "x"}),
        p(address={"province_code": " 51", "commune_code": "21025", "detail": "  12   Hùng Vương  "}),
        p(address={"text": "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"}),
        p(address={"text": "  Số 12 Hùng Vương,\nCẩm Thành ", "detail": "Số 12"}),
        p(payer="agency"), p(payer="citizen"), p(exemption="war_invalid"), p(exemption="none"),
        p(postage_vnd=0), p(postage_vnd=1_000_000_000), p(collect_vnd=15000), p(collect_vnd=0),
        p(weight_g=1), p(weight_g=30_000), {**p(), "weight_g": None},
        p(delivery_window="morning"), p(delivery_window="afternoon"), p(delivery_window="Sáng"),
        p(delivery_window="buổi chiều"), p(delivery_window="08:00-10:00"), p(delivery_window="8h - 9h30"),
        p(delivery_window={"from": "08:30", "to": "10:00"}), {**p(), "delivery_window": None},
        p(delivery_window=""), p(delivery_window="   "),
        p(note="Gọi trước khi giao"), p(note="  dòng 1\ndòng 2  "), {**p(), "note": None}, p(note=""),
        p(dossier_code="x" * 64), p(procedure_name="p" * 500), p(issuing_agency="a" * 255),
    ]


def _invalid() -> list[Any]:
    """Bodies OrderIn refuses (fast_load must leave every one to it)."""
    p = order_payload
    base = p()
    bodies: list[Any] = [None, [], [base], "text", 5, {}]
    for key in ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient", "address",
                "appointment_date"):
        bodies.append({k: v for k, v in base.items() if k != key})
    for key in TOP_KEYS:
        for value in (None, 5, True, 1.5, "", " ", ["x"], {"a": 1}, "x" * 600, "a\x01b", -1, 10**12):
            bodies.append({**base, key: value})
    for value in (None, "", "123", "0005123456", "0905123456789", 905123456, "abc", "+1 202 555 0100"):
        bodies.append(p(recipient={"name": "Hoa", "phone": value}))
        bodies.append(p(authorised_person={"name": "Bình", "phone": value}))
    for value in ("123", "abc", "12345678901", 123456789012, "１２３４５６７８９０１２"):
        bodies.append(p(recipient={"name": "Hoa", "phone": "0905123456", "id_number": value}))
    bodies += [
        p(recipient={"name": "Hoa", "phone": "0905123456", "extra": 1}),
        p(recipient={"name": "", "phone": "0905123456"}), p(recipient={"phone": "0905123456"}),
        p(recipient="Hoa"), p(authorised_person={"phone": "0912345678"}), p(authorised_person="Bình"),
        p(authorised_person={"name": "Bình", "extra": 1}),
        p(address={"province_code": "51", "commune_code": "21025"}),
        p(address={"province_code": "51", "commune_code": "21025", "detail": ""}),
        p(address={"province_code": "", "commune_code": "21025", "detail": "x"}),
        p(address={"province_code": "5" * 17, "commune_code": "21025", "detail": "x"}),
        p(address={"province_code": 51, "commune_code": "21025", "detail": "x"}),
        p(address={"province_code": "51", "commune_code": "21025", "detail": "x", "text": "12 Hùng Vương"}),
        p(address={"text": ""}), p(address={"text": None}), p(address={"text": "x" * 501}),
        p(address={"text": "12 Hùng Vương", "detail": ""}), p(address={"text": "x", "district_code": "522"}),
        p(address={"province_code": "51", "commune_code": "21025", "detail": "x", "street": "y"}),
        p(address={}), p(address="12 Hùng Vương"),
        p(appointment_date=_day(-1)), p(appointment_date=_day(367)), p(appointment_date="2026-1-5"),
        p(appointment_date="2026-02-30"), p(appointment_date=_day(3) + "T00:00:00"),
        p(appointment_date=_day(3) + "\n"), p(appointment_date="２０２６-１２-１０"),
        p(direction="RESULT_TO_CITIZEN"), p(payer="Agency"), p(exemption="hero"),
        p(delivery_window="noon"), p(delivery_window={"from": "08:00"}), p(delivery_window=["08:00", "10:00"]),
        p(delivery_window={"from": "05:00", "to": "06:00"}), p(delivery_window="08:00-08:10"),
        p(delivery_window={"from": "08:00", "to": "10:00", "x": 1}),
        p(weight_g=0), p(weight_g=30_001), p(postage_vnd="26000"), p(collect_vnd=1_000_000_001),
        p(dossier_code="x" * 65), p(dossier_code="a\u200bb"), {**base, "unknown": 1},
    ]
    return bodies


def test_the_usual_bodies_take_the_fast_path_with_orderins_output(context):
    valid = _valid()
    taken = [check(body) for body in valid]
    # every valid body, but for the few fast_load leaves to OrderIn (texts with line breaks or
    # non-printable characters, blank optional ones given as text)
    assert sum(taken) >= len(valid) - 6, [b for b, t in zip(valid, taken, strict=True) if not t]
    assert check(order_payload())  # the bench's body


def test_invalid_bodies_are_left_to_orderin(context):
    """Bodies with one part wrong (some of the swaps are valid: then the same output is required)."""
    refused = 0
    for body in _invalid():
        try:
            SCHEMA.load(copy.deepcopy(body))
        except ValidationError:
            refused += 1
        check(body)  # fails if fast_load answers for a body OrderIn refuses, or answers otherwise
    assert refused >= 150


# --- hypothesis: bodies mixed from valid and invalid parts --------------------------------------

_ABSENT = object()
_TEXTS = st.one_of(st.sampled_from(["", " ", "Hùng Vương", "  a  b ", "x" * 64, "x" * 65, "a\nb", "a\x00b",
                                    unicodedata.normalize("NFD", "Nguyễn"), "\u00a0x", "x" * 256]),
                   st.text(max_size=20))
_ANY = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False), _TEXTS,
                 st.just([]), st.just({}))


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just(_ABSENT), strategy)


def _dict(**parts: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({k: _maybe(v) for k, v in parts.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not _ABSENT})


_PHONES = st.sampled_from(["0905123456", "+84905123456", " 0912345678 ", "02553822123", "090 512 3456", "",
                           "123", "0005123456", None, 905123456])
_IDS = st.sampled_from(["012345678901", "123456789", "0123 4567 8901", "", None, "123", "abc", 1])
_PERSON = _dict(name=st.one_of(st.just("Nguyễn Thị Hoa"), _TEXTS, st.none()), phone=_PHONES, id_number=_IDS)
_CODES = st.sampled_from(["51", "21025", "522", "", " ", "1" * 16, "1" * 17, None, 51])
_ADDRESS = st.one_of(
    _dict(province_code=_CODES, district_code=_CODES, commune_code=_CODES,
          detail=st.one_of(st.just("12 Hùng Vương"), _TEXTS)),
    _dict(text=st.one_of(st.just("Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"), _TEXTS),
          detail=_TEXTS, district_code=_CODES),
)
_DAYS = st.one_of(st.integers(-2, 370).map(_day), st.sampled_from(["2026-1-5", "", "2026-02-30", None, 20261210]))
_WINDOWS = st.sampled_from(["morning", "Chiều", "08:00-10:00", "8h-8h10", "", "  ", "noon", None, 5,
                            {"from": "08:00", "to": "10:00"}, {"from": "08:00"}, {"from": "5:00", "to": "6:00"}])
_INTS = st.one_of(st.sampled_from([0, 1, 26000, 30_000, 30_001, 10**9, 10**9 + 1, -1, True, 1.0, "1", None]))
_BODIES = _dict(
    direction=st.sampled_from(["result_to_citizen", "dossier_to_agency", "both", "x", None, 1, ["both"]]),
    dossier_code=st.one_of(st.just("H55.22-0001"), _TEXTS), procedure_code=st.one_of(st.none(), _TEXTS),
    procedure_name=st.one_of(st.just("Cấp đổi giấy phép lái xe"), _TEXTS),
    issuing_agency=st.one_of(st.just("Sở Xây dựng"), _TEXTS),
    recipient=st.one_of(_PERSON, _ANY), authorised_person=st.one_of(st.none(), _PERSON, _ANY),
    address=st.one_of(_ADDRESS, _ANY), postage_vnd=_INTS, collect_vnd=_INTS, weight_g=_INTS,
    payer=st.sampled_from(["citizen", "agency", "x", None, {}]),
    exemption=st.sampled_from(["none", "war_invalid", "x", None]),
    appointment_date=_DAYS, delivery_window=_WINDOWS, note=st.one_of(st.none(), _TEXTS),
)


@given(body=_BODIES, extra=st.booleans())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mixed_bodies_get_orderins_output_or_none(context, body, extra):
    if extra:
        body = {**body, "extra": 1}
    check(body)


@given(body=_BODIES.map(lambda b: {**order_payload(), **b}))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mostly_valid_bodies_get_orderins_output_or_none(context, body):
    check(body)


# --- through the API --------------------------------------------------------------------------------

def test_orders_created_through_the_fast_path_store_what_orderin_would(app, client, auth):
    """The stored order's request digest is that of OrderIn's output: the same order, the same retry
    answers. Bodies of every shape; a retry of each is answered 200 with the same order."""
    import sqlalchemy as sa

    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder
    from delivery_service.orders.services import request_digest

    bodies = [order_payload(), order_payload(direction="dossier_to_agency", appointment_date=None,
                                             delivery_window={"from": "08:30", "to": "10:00"}),
              order_payload(authorised_person={"name": "Trần  Văn Bình", "phone": "0912345678"},
                            recipient={"name": "Lê Thị Cúc", "phone": "+84905123456", "id_number": "123456789"},
                            weight_g=250, note="Gọi trước", delivery_window="chiều", payer="agency",
                            exemption="war_invalid", collect_vnd=15000)]
    with app.app_context():
        for body in bodies:
            assert check(body)
            expected = request_digest(SCHEMA.load(copy.deepcopy(body)))
            r = client.post("/api/v1/orders", json=body, headers=auth)
            assert r.status_code == 201, r.json
            stored = db.session.scalar(sa.select(DeliveryOrder.request_digest).where(
                DeliveryOrder.item_id == r.json["item_id"]))
            assert stored == expected
            again = client.post("/api/v1/orders", json=body, headers=auth)
            assert again.status_code == 200 and again.json["item_id"] == r.json["item_id"]


def test_bodies_the_fast_path_leaves_get_the_same_answers_as_before(app, client, auth):
    """Refused bodies answer from webargs and OrderIn: per-field 422s, malformed JSON 400."""
    r = client.post("/api/v1/orders", json=order_payload(recipient={"name": "Hoa", "phone": "123"}), headers=auth)
    assert r.status_code == 422
    assert "phone" in json.dumps(r.json["errors"]["json"]["recipient"])
    r = client.post("/api/v1/orders", json={**order_payload(), "extra": 1}, headers=auth)
    assert r.status_code == 422 and "extra" in r.json["errors"]["json"]
    body = json.dumps(order_payload(), ensure_ascii=False)
    for data in (body.encode("utf-16"), b"\xef\xbb\xbf" + body.encode(), b"{", b"[]"):
        r = client.post("/api/v1/orders", data=data, headers={**auth, "Content-Type": "application/json"})
        assert r.status_code in (400, 422), (data[:10], r.status_code)
    # a body OrderIn takes as valid JSON of another type (+json) goes through webargs too, and works
    r = client.post("/api/v1/orders", data=body.encode(),
                    headers={**auth, "Content-Type": "application/vnd.api+json"})
    assert r.status_code == 201, r.json


def test_no_personal_text_is_kept_between_bodies():
    """Names, phones, addresses, ID numbers and notes are read afresh for each body: a worker keeps
    none of them after the request (only texts such as the procedure's and the agency's are kept)."""
    from delivery_service.orders import fast_load as module

    today = dt.date.today()
    module._kept_str.cache_clear()  # a full cache would not grow either (the suite's other tests fill it)

    def body(i: int) -> dict[str, Any]:
        return order_payload(dossier_code="H55.22-same", note=f"Gọi anh {i} trước",
                             recipient={"name": f"Nguyễn Văn {i}", "phone": f"09051234{i:02d}", "id_number": f"0{i:011d}"},
                             authorised_person={"name": f"Trần Thị {i}", "phone": f"09871234{i:02d}"},
                             address={"province_code": "51", "commune_code": "21025", "detail": f"{i} Hùng Vương"})

    assert fast_load(body(1), today) is not None
    kept = module._kept_str.cache_info().currsize
    for i in range(2, 40):
        assert fast_load(body(i), today)["recipient"]["name"] == f"Nguyễn Văn {i}"
    assert module._kept_str.cache_info().currsize == kept
    assert fast_load(order_payload(address={"text": "12 Hùng Vương, phường Cẩm Thành, tỉnh Quảng Ngãi"}),
                     today) is not None
    assert module._kept_str.cache_info().currsize == kept + 1  # its dossier code; not the address


def test_a_long_text_is_left_to_orderin_and_not_kept():
    from delivery_service.orders import fast_load as module

    module._kept_str.cache_clear()
    assert fast_load(order_payload(dossier_code="H55.22-same"), dt.date.today()) is not None
    before = module._kept_str.cache_info().currsize
    assert fast_load(order_payload(dossier_code="H55.22-same", procedure_name="x" * 60_000), dt.date.today()) is None
    assert module._kept_str.cache_info().currsize == before


def test_the_numbering_plan_check_is_phonenumbers_own():
    """The per-length patterns built from phonenumbers' metadata answer as is_valid_number does, for
    every prefix of one to three digits and every length a Vietnamese number may have."""
    import random

    import phonenumbers

    from delivery_service.orders.fast_load import _VALID_NSN

    rng = random.Random(15)
    valid = 0
    for prefix in range(1, 1000):
        for length in range(max(7, len(str(prefix))), 12):
            rest = length - len(str(prefix))
            for _ in range(4):
                nsn = f"{prefix}{rng.randrange(10 ** rest):0{rest}d}" if rest else str(prefix)
                expected = phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=84,
                                                                                 national_number=int(nsn)))
                assert _VALID_NSN(nsn) == expected, nsn
                valid += expected
    assert valid > 1000  # a fair share of the numbers are valid ones
