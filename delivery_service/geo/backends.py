"""Geocoders behind one Protocol: offline (no network), or a self-hosted Nominatim or Photon via geopy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from delivery_service.geo.models import LocationSource
from routes.text import fold

log = logging.getLogger(__name__)

# Approximate radius in metres within which the address lies, by what the server matched: a house
# number pins the gate (~25 m); a street or road only says "somewhere along it" (~150 m, a short
# village road); a hamlet, village or neighbourhood is ~1 km across; a town or suburb ~2 km; a
# commune-level area is no better than our own commune centroid (3 km), a district 10 km, a province
# 30 km. Unknown types get the hamlet figure.
HOUSE_PRECISION_M = 25
STREET_PRECISION_M = 150
PLACE_PRECISION_M = 1_000
TYPE_PRECISION_M: dict[str, int] = {
    **dict.fromkeys(("house", "building", "apartments", "residential_building", "detached",
                     "address", "house_number"), HOUSE_PRECISION_M),
    **dict.fromkeys(("street", "road", "residential", "tertiary", "secondary", "primary", "trunk",
                     "unclassified", "service", "living_street", "pedestrian", "track", "path",
                     "footway"), STREET_PRECISION_M),
    **dict.fromkeys(("hamlet", "village", "neighbourhood", "quarter", "isolated_dwelling", "locality",
                     "farm", "allotments", "square"), PLACE_PRECISION_M),
    **dict.fromkeys(("suburb", "town", "district_of_city"), 2_000),
    **dict.fromkeys(("municipality", "administrative", "city_block", "borough"), 3_000),
    **dict.fromkeys(("county", "district", "city"), 10_000),
    **dict.fromkeys(("state", "province", "region"), 30_000),
}
# Nominatim's place_rank when the type says nothing (30 house, 26-27 street, 17-25 settlements, …).
RANK_PRECISION_M = ((28, HOUSE_PRECISION_M), (26, STREET_PRECISION_M), (17, PLACE_PRECISION_M),
                    (13, 3_000), (9, 10_000), (0, 30_000))


@dataclass(frozen=True)
class AddressQuery:
    """An address as the geocoding server is asked for it."""

    detail: str
    commune: str
    province: str
    district: str | None = None
    country: str = "Việt Nam"

    def text(self) -> str:
        """The free-text query, most specific part first."""
        parts = (self.detail, self.commune, self.district, self.province, self.country)
        return ", ".join(p.strip() for p in parts if p and p.strip())

    def key(self) -> str:
        """The cache key: the query folded, so that spelling variants share one answer."""
        return fold(self.text())


@dataclass(frozen=True)
class GeoResult:
    latitude: float
    longitude: float
    source: LocationSource
    precision_m: int
    label: str  # the server's class:type of the match, e.g. "place:hamlet"


class _Withheld:
    """Carries a query through geopy's RateLimiter, whose retry warnings log the call's arguments."""

    __slots__ = ("query",)

    def __init__(self, query: AddressQuery) -> None:
        self.query = query

    def __repr__(self) -> str:
        return "<address withheld>"


class GeocoderUnavailable(Exception):
    """The geocoding server failed (error, timeout, refusal): try again later, cache nothing."""


class Geocoder(Protocol):
    """Finds an address; ``None`` means the server knows no such place."""

    name: str
    remote: bool  # answers come from a server: cache them, and never call it during a request

    def geocode(self, query: AddressQuery) -> GeoResult | None: ...


class OfflineGeocoder:
    """No geocoding server: the service places orders by couriers' fixes and unit centroids."""

    name = "offline"
    remote = False

    def geocode(self, query: AddressQuery) -> GeoResult | None:
        return None


def precision_for(kind: str | None, rank: int | None = None) -> int:
    """The precision in metres of a match of this type (or Nominatim place_rank)."""
    if kind and kind in TYPE_PRECISION_M:
        return TYPE_PRECISION_M[kind]
    if rank is not None:
        return next(m for floor, m in RANK_PRECISION_M if rank >= floor)
    return PLACE_PRECISION_M


class _GeopyGeocoder:
    """A geopy geocoder on our own server, spaced by geopy's RateLimiter."""

    name: str
    remote = True
    source: LocationSource

    def __init__(self, url: str, user_agent: str, timeout_s: float, min_delay_s: float) -> None:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        domain = (parts.netloc + parts.path).rstrip("/")  # a path prefix such as /nominatim is kept
        self.client = self._client(domain=domain, scheme=parts.scheme, user_agent=user_agent,
                                   timeout=timeout_s)
        # Retries are for a busy server (503, timeouts); swallow_exceptions=False so that a failure
        # reaches us and is not mistaken for "not found" (which would be cached).
        self.limited: Callable[..., Any] = self._limiter(min_delay_s)

    def _client(self, **kw: Any) -> Any:
        raise NotImplementedError

    def _call(self, withheld: _Withheld) -> Any:
        raise NotImplementedError

    def _parse(self, raw: Mapping[str, Any]) -> tuple[float, float, str, int]:
        raise NotImplementedError

    def _limiter(self, min_delay_s: float) -> Callable[..., Any]:
        from geopy.extra.rate_limiter import RateLimiter

        return RateLimiter(self._call, min_delay_seconds=min_delay_s, max_retries=2,
                           error_wait_seconds=max(2 * min_delay_s, 0.05), swallow_exceptions=False)

    def geocode(self, query: AddressQuery) -> GeoResult | None:
        from geopy.exc import GeopyError

        try:
            location = self.limited(_Withheld(query))
        except GeopyError as exc:
            # The class only: geopy's messages may quote the query, that is a citizen's address.
            raise GeocoderUnavailable(f"{self.name}: {exc.__class__.__name__}") from None
        if location is None:
            return None
        try:
            lat, lon, label, precision = self._parse(location.raw)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise GeocoderUnavailable(f"{self.name}: unreadable answer ({exc.__class__.__name__})") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return GeoResult(lat, lon, self.source, precision, label[:64])


class NominatimGeocoder(_GeopyGeocoder):
    """A self-hosted Nominatim (``/search``)."""

    name = "nominatim"
    source = LocationSource.NOMINATIM

    def _client(self, **kw: Any) -> Any:
        from geopy.geocoders import Nominatim

        return Nominatim(**kw)

    def _call(self, withheld: _Withheld) -> Any:
        return self.client.geocode(withheld.query.text(), exactly_one=True, country_codes="vn", language="vi")

    def _parse(self, raw: Mapping[str, Any]) -> tuple[float, float, str, int]:
        kind = raw.get("type") or raw.get("addresstype")
        rank = raw.get("place_rank")
        precision = precision_for(kind, int(rank) if rank is not None else None)
        return float(raw["lat"]), float(raw["lon"]), f"{raw.get('class', '')}:{kind or ''}", precision


class PhotonGeocoder(_GeopyGeocoder):
    """A self-hosted Photon (``/api``)."""

    name = "photon"
    source = LocationSource.PHOTON

    def _client(self, **kw: Any) -> Any:
        from geopy.geocoders import Photon

        return Photon(**kw)

    def _call(self, withheld: _Withheld) -> Any:
        return self.client.geocode(withheld.query.text(), exactly_one=True)  # Photon: no Vietnamese labels

    def _parse(self, raw: Mapping[str, Any]) -> tuple[float, float, str, int]:
        lon, lat = raw["geometry"]["coordinates"][:2]
        props = raw.get("properties") or {}
        value = props.get("osm_value")
        # Photon's own "type" (house, street, locality, city…) is coarser than the OSM value.
        precision = precision_for(value) if value in TYPE_PRECISION_M else precision_for(props.get("type"))
        return float(lat), float(lon), f"{props.get('osm_key', '')}:{value or ''}", precision


def make_geocoder(config: Mapping[str, Any]) -> Geocoder:
    """The geocoder that ``config`` (GEOCODER, GEOCODER_URL, …) asks for."""
    kind = config.get("GEOCODER", "offline")
    if kind == "offline":
        return OfflineGeocoder()
    classes: dict[str, type[_GeopyGeocoder]] = {"nominatim": NominatimGeocoder, "photon": PhotonGeocoder}
    if kind not in classes:
        raise ValueError(f"unknown GEOCODER {kind!r}")
    return classes[kind](config["GEOCODER_URL"], config["GEOCODER_USER_AGENT"],
                         float(config["GEOCODER_TIMEOUT_S"]), float(config["GEOCODER_MIN_DELAY_S"]))
