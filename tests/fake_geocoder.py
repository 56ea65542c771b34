"""A real HTTP server on loopback that answers like Nominatim (/search) and Photon (/api).

The geocoding server is outside our system; this stands in for it so that geopy, the rate limiter,
timeouts and HTTP errors are exercised for real.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from routes.text import fold


@dataclass
class Seen:
    path: str
    query: str
    user_agent: str
    at: float


@dataclass
class FakeGeocodingServer:
    """Answers a query whose folded text contains a key of ``places`` with that place."""

    # folded text -> (latitude, longitude, osm class, osm type)
    places: dict[str, tuple[float, float, str, str]] = field(default_factory=dict)
    status: int = 200  # anything else: every request fails with this status
    fail_after: int | None = None  # answer this many requests more, then fail every one (500)
    delay_s: float = 0.0
    requests: list[Seen] = field(default_factory=list)

    def start(self) -> FakeGeocodingServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                q = parse_qs(parts.query).get("q", [""])[0]
                fake.requests.append(Seen(parts.path, q, self.headers.get("User-Agent", ""), time.monotonic()))
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.fail_after is not None:
                    if fake.fail_after <= 0:
                        self._send(500, {"error": "unavailable"})
                        return
                    fake.fail_after -= 1
                if fake.status != 200:
                    self._send(fake.status, {"error": "unavailable"})
                    return
                match = next((p for key, p in fake.places.items() if key in fold(q)), None)
                if parts.path.endswith("/search"):
                    self._send(200, [_nominatim(match)] if match else [])
                elif parts.path.endswith("/api"):
                    self._send(200, {"type": "FeatureCollection", "features": [_photon(match)] if match else []})
                else:
                    self._send(404, {"error": "no such endpoint"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _nominatim(place: tuple[float, float, str, str]) -> dict[str, Any]:
    lat, lon, cls, kind = place
    return {"place_id": 1, "lat": str(lat), "lon": str(lon), "class": cls, "type": kind,
            "display_name": "somewhere", "boundingbox": [str(lat - 0.001), str(lat + 0.001),
                                                         str(lon - 0.001), str(lon + 0.001)]}


def _photon(place: tuple[float, float, str, str]) -> dict[str, Any]:
    lat, lon, cls, kind = place
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"osm_key": cls, "osm_value": kind, "name": "somewhere", "type": "street"}}
