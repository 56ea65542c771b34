"""An open-loop HTTP load generator: requests fired at a fixed rate, whatever the server does.

wrk is closed-loop (each connection waits for its answer before sending the next request), so it
cannot say what the latency is at a given offered load; wrk2 does that, but Debian has no package of
it. This fires request i at t0 + i/rate from one asyncio loop, each on its own connection (gunicorn's
sync workers close the connection after every response anyway, as wrk sees too), and records:

* latency: from the moment the request was due (its schedule slot) to the last byte of the
  answer, so a late send counts against the result, as in wrk2 (no coordinated omission);
* lag: how late the generator itself was in starting the request; its p99 is the generator's own
  overhead, and it is reported so a starved generator is visible rather than blamed on the server;
* the generator's CPU time per request.

``python openloop.py --selftest`` measures the floor: this generator against a trivial
raw-socket server in another process (what the numbers look like when the server costs ~nothing).

The number of requests is rate x duration (a bounded loop); at most ``max_inflight`` are open at
once, requests over that limit are counted as ``dropped`` and not sent. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


@dataclass
class OpenLoopResult:
    rate: float
    duration: float
    sent: int = 0
    dropped: int = 0
    errors: Counter = field(default_factory=Counter)  # exception class name -> count
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, due -> last byte (answered only)
    lags: list[float] = field(default_factory=list)  # seconds, due -> request started
    wall: float = 0.0
    cpu: float = 0.0

    @staticmethod
    def _pct(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]

    @classmethod
    def merge(cls, parts: list[OpenLoopResult]) -> OpenLoopResult:
        """Pool several runs at the same rate (e.g. segments interleaved with another target's)."""
        out = cls(rate=parts[0].rate, duration=sum(p.duration for p in parts))
        for p in parts:
            out.sent += p.sent
            out.dropped += p.dropped
            out.errors.update(p.errors)
            out.statuses.update(p.statuses)
            out.latencies += p.latencies
            out.lags += p.lags
            out.wall += p.wall
            out.cpu += p.cpu
        return out

    def pct_ms(self, p: float) -> float:
        return self._pct(self.latencies, p) * 1000

    def lag_ms(self, p: float) -> float:
        return self._pct(self.lags, p) * 1000

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def achieved_rate(self) -> float:
        return self.answered / self.wall if self.wall else 0.0

    @property
    def cpu_per_request_us(self) -> float:
        return self.cpu / self.sent * 1e6 if self.sent else float("nan")

    def count(self, lo: int, hi: int) -> int:
        return sum(n for s, n in self.statuses.items() if lo <= s < hi)

    def summary(self) -> dict:
        return {"rate": self.rate, "sent": self.sent, "answered": self.answered, "dropped": self.dropped,
                "errors": dict(self.errors), "statuses": dict(self.statuses),
                "achieved_rps": round(self.achieved_rate, 1), "p50_ms": round(self.pct_ms(50), 2),
                "p90_ms": round(self.pct_ms(90), 2), "p99_ms": round(self.pct_ms(99), 2),
                "max_ms": round(self.pct_ms(100), 2), "lag_p50_ms": round(self.lag_ms(50), 3),
                "lag_p99_ms": round(self.lag_ms(99), 3),
                "cpu_share": round(self.cpu / self.wall, 3) if self.wall else None,
                "cpu_per_request_us": round(self.cpu_per_request_us, 1)}


async def _one(port: int, payload: bytes, due: float, res: OpenLoopResult, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    res.lags.append(loop.time() - due)
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                    break
            if length is None:
                await reader.read()  # until the server closes
            elif length:
                await reader.readexactly(length)
        res.latencies.append(loop.time() - due)
        res.statuses[status] += 1
    except Exception as exc:  # noqa: BLE001  (every failure is counted, none stops the run)
        res.errors[type(exc).__name__] += 1
    finally:
        if writer is not None:
            writer.close()


async def _run(port: int, rate: float, duration: float, make_request: Callable[[int], bytes],
               max_inflight: int, timeout: float) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    res = OpenLoopResult(rate=rate, duration=duration)
    total = max(1, int(rate * duration))
    payloads = [make_request(i) for i in range(total)]  # built before the clock starts
    tasks: set[asyncio.Task] = set()
    cpu0, t0 = time.process_time(), loop.time() + 0.05
    for i in range(total):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_inflight:
            res.dropped += 1
            continue
        task = asyncio.create_task(_one(port, payloads[i], due, res, timeout))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        res.sent += 1
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout + 1)
    res.wall = loop.time() - t0
    res.cpu = time.process_time() - cpu0
    return res


def run(port: int, rate: float, duration: float, make_request: Callable[[int], bytes],
        max_inflight: int = 256, timeout: float = 10.0) -> OpenLoopResult:
    """Fire ``rate`` requests per second for ``duration`` seconds at 127.0.0.1:``port``.

    ``make_request(i)`` returns the raw bytes of request ``i`` (use a unique body per i)."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    return asyncio.run(_run(port, rate, duration, make_request, max_inflight, timeout))


def http_request(method: str, path: str, port: int, body: bytes = b"",
                 headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- the trivial server of the self-test ---------------------------------------------------------

def _serve_trivial(port: int, max_seconds: float) -> None:
    """Answer every request with a small 201, one connection at a time (no parsing beyond the head)."""
    answer = (b"HTTP/1.1 201 CREATED\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
              b"Connection: close\r\n\r\n{\"ok\":true}")
    srv = socket.create_server((LOOPBACK, port), backlog=1024)
    srv.settimeout(1.0)
    end = time.monotonic() + max_seconds
    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            conn.sendall(answer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class TrivialServer:
    """The trivial server in a subprocess, for as long as the ``with`` block lasts (at most max_seconds)."""

    def __init__(self, max_seconds: float = 600.0) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-trivial",
                                      str(self.port), str(max_seconds)], stdin=subprocess.DEVNULL)

    def __enter__(self) -> TrivialServer:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("the trivial server did not start")

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def run(self, rate: float, duration: float) -> OpenLoopResult:
        body = json.dumps({"dossier_code": "x" * 40, "pad": "y" * 400}).encode()
        request = http_request("POST", "/orders", self.port, body, {"Content-Type": "application/json"})
        return run(self.port, rate, duration, lambda i: request)


def selftest(rate: float, duration: float) -> OpenLoopResult:
    """This generator against a trivial server in another process: the floor of what it reports."""
    with TrivialServer(duration + 15) as server:
        return server.run(rate, duration)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--selftest", action="store_true", help="measure the floor against a trivial server")
    ap.add_argument("--serve-trivial", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, default=600.0)
    ap.add_argument("--duration", type=float, default=5.0)
    args = ap.parse_args()
    if args.serve_trivial:
        _serve_trivial(int(args.serve_trivial[0]), float(args.serve_trivial[1]))
        return
    if args.selftest:
        print(json.dumps(selftest(args.rate, args.duration).summary()))
        return
    ap.error("use --selftest (intake.py imports this module for real runs)")


if __name__ == "__main__":
    main()
