"""Background jobs: recorded in the job outbox in the transaction that asks for them, run after it commits.

``enqueue_after_commit`` inserts an outbox row (outbox.py) in the caller's transaction: a rollback
drops it, a commit makes it a durable promise. After the commit a runner thread of this process wakes:
with ``REDIS_URL`` it relays due rows to rq (short timeouts; when Redis is down or slow the rows wait
and the relay tries again every few seconds) and a ``delivery-service worker`` runs them; without it
the runner runs them itself. Either way no request waits for a job or for Redis, and the outbox row,
claimed by compare-and-set, decides that each job runs once whatever rq or the processes do.
With ``JOBS_INLINE`` (the tests) the runner's work is done synchronously right after the commit.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import math
import os
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from delivery_service import metrics, outbox
from delivery_service.db import utcnow
from delivery_service.extensions import db

log = logging.getLogger(__name__)
_PENDING = "outbox_rows_added"
_worker_app: Flask | None = None
# Jobs that nobody waits for: they go to the background queue, behind nothing a person waits for.
BACKGROUND = frozenset({
    "delivery_service.webhooks.jobs:dispatch",
    "delivery_service.webhooks.jobs:dispatch_due",
    "delivery_service.reports.fold:fold_job",
    "delivery_service.geo.services:locate_orders",
    "delivery_service.geo.services:locate_new",
})


def queue_of(func_path: str) -> str:
    """The outbox queue a job goes to unless its caller names one: "background" for ``BACKGROUND``,
    else "interactive"."""
    return "background" if func_path in BACKGROUND else "interactive"


def enqueue_after_commit(func_path: str, *args: Any, timeout: int = 600, on_failure: str | None = None,
                         queue: str | None = None, dedupe_key: str | None = None,
                         delay_s: float = 0.0,
                         coalesce_s: float | None = None, join_waiting: bool = False) -> None:
    """Run ``module:function`` with JSON-able ``args`` once, after the current transaction commits.

    If that transaction rolls back instead, the job is dropped. ``on_failure`` (``module:function``,
    called with the same ``args``) runs when the job raised, timed out, or its process died on the
    last attempt. ``queue``: "interactive" or "background" (default: by ``BACKGROUND``).
    ``dedupe_key``: coalesce with a run of the same key that has not started yet (cursor jobs whose
    one run covers every commit before it). ``delay_s``: not before this many seconds (retries).
    ``coalesce_s`` (background jobs with a ``dedupe_key``; default JOBS_COALESCE_S): at most one run
    of the key starts per that many seconds in this process (see ``_coalesce_delay``); 0 asks for a
    run now (always with JOBS_INLINE). ``join_waiting`` (with ``dedupe_key``, for a job whose missed
    trigger a sweep covers, such as the webhooks' runs and the geocoding scan): while the run this
    process queued and committed is still waiting, more than JOIN_MARGIN_S before its start, write
    nothing (that run starts after this commit and covers it): a burst of commits then costs no
    statement each, and on PostgreSQL they do not queue on the waiting row's lock.
    """
    session = db.session()
    if not session.in_transaction():
        session.begin()
    queue = queue or queue_of(func_path)
    slot = None  # this process's coalescing slot for the key (join_waiting)
    if dedupe_key is not None and queue == "background" and not delay_s:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if app.config["JOBS_INLINE"]:  # run at the commit, whatever the key's period
            coalesce_s = 0.0
        elif coalesce_s is None:
            coalesce_s = float(app.config["JOBS_COALESCE_S"])
        delay_s = _coalesce_delay(app, dedupe_key, coalesce_s)
        if join_waiting:
            with _coalesce_lock:
                slot = app.extensions.get("jobs_coalesce_slots", {}).get(dedupe_key)
                written = app.extensions.get(_WRITTEN, {}).get(dedupe_key)
                if (delay_s > JOIN_MARGIN_S and written is not None and written[0] == slot
                        and time.monotonic() < written[1]):
                    return
    due = utcnow() + dt.timedelta(seconds=delay_s)
    stored_due = outbox.add(session.connection(), func_path, list(args), queue=queue, timeout_s=timeout,
                            on_failure=on_failure, dedupe_key=dedupe_key, due_at=due)
    if join_waiting and dedupe_key is not None:
        slots = session.info.setdefault(_SLOTS, {})
        # Marked written at the commit. A row that starts at this slot or later covers every commit
        # until then. A row joined that runs sooner (queued before, pulled forward by another process,
        # or handed to rq and waiting for a busy worker) may start before the commits this lets skip,
        # so they skip for JOIN_RECHECK_S only, then write again: one statement a second, where each
        # commit joining that row would, on PostgreSQL, queue on its lock for as long as it waits.
        # (Commits skipped after that row started wait for the next write, or at worst for the
        # maintenance pass.)
        if slot is not None and stored_due is not None:
            exact = stored_due >= due - dt.timedelta(milliseconds=1)
            slots[dedupe_key] = (slot, math.inf if exact else time.monotonic() + JOIN_RECHECK_S)
        else:
            slots.pop(dedupe_key, None)
    if delay_s <= 0:
        # Due at once: the commit wakes the runner (or drains, JOBS_INLINE). A row due later is
        # found by the runner's poll (JOBS_POLL_S) once due; waking it now would find nothing to run
        # and cost a pass at every commit of a burst.
        session.info[_PENDING] = True


_coalesce_lock = threading.Lock()
# app.extensions: key -> (the slot whose row this process committed, skip until this monotonic time)
_WRITTEN = "jobs_coalesce_written"
_SLOTS = "jobs_coalesce_slots_pending"  # session.info: the slots written in the open transaction
# A commit this close to its waiting run's start writes the row anyway: the run might be claimed
# before the commit is visible.
JOIN_MARGIN_S = 0.2
JOIN_RECHECK_S = 1.0  # after joining a row that starts sooner than the slot, skip at most this long


def _coalesce_delay(app: Flask, key: str, every_s: float, now: float | None = None) -> float:
    """How long a coalesced job of ``key`` asked for now should wait: runs start on this process's
    slots ``every_s`` apart. The first request after a quiet spell runs at once; a request while that
    run may have started waits for the next slot (joining whatever waits for it), so a burst of
    commits of any size queues about one run per ``every_s``, each covering every commit before it."""
    if every_s <= 0:
        return 0.0
    now = time.monotonic() if now is None else now
    with _coalesce_lock:
        slots = app.extensions.setdefault("jobs_coalesce_slots", {})
        last = slots.get(key)
        if last is None or now >= last + every_s:
            slots[key] = now  # quiet: a run now
            return 0.0
        if now < last:  # the next slot is taken already: join it
            return last - now
        slots[key] = last + every_s  # the slot's run may be running: the next one
        return last + every_s - now


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: all of it waits for the real commit
        return
    slots = session.info.pop(_SLOTS, None)
    if slots:
        with _coalesce_lock:
            current_app.extensions.setdefault(_WRITTEN, {}).update(slots)
    if not session.info.pop(_PENDING, False):
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["JOBS_INLINE"]:
        drain(app)
    elif not app.extensions.get("jobs_no_runner"):
        runner(app).wake()
    # (an rq worker's processes start no runner thread: its rq loop relays; see run_worker)


def _after_transaction_end(session: Session, transaction) -> None:  # noqa: ANN001
    # On a rollback the rows went with the transaction; nothing to wake for.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_SLOTS, None)


def _after_rollback(session: Session) -> None:
    # Also a savepoint's: a row it wrote is gone, so its slot must not count as written (at worst the
    # next commit writes again).
    session.info.pop(_SLOTS, None)


# Running a job -------------------------------------------------------------------------------------

def _call(app: Flask, func_path: str, args: tuple[Any, ...]) -> Any:
    """Run ``module:function`` in a fresh app context of ``app``: its own session and transaction."""
    module, _, name = func_path.partition(":")
    func = getattr(importlib.import_module(module), name)
    with app.app_context():
        try:
            result = func(*args)
            db.session.commit()
            return result
        except BaseException:
            db.session.rollback()
            raise
        finally:
            # A forking worker's main process must hold no connection its children could inherit.
            db.session.remove()


def _engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


class _Heartbeat(threading.Thread):
    """Keeps a running row's lease alive while its job runs; when the process dies, the lease lapses
    and another process retries the job or fails it (within JOBS_LEASE_S plus one poll)."""

    def __init__(self, app: Flask, row: outbox.Row) -> None:
        super().__init__(name=f"outbox-heartbeat-{row.id}", daemon=True)
        self.engine = _engine(app)
        self.row = row
        self.lease_s = int(app.config["JOBS_LEASE_S"])
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                with self.engine.begin() as conn:
                    if not outbox.renew(conn, self.row, utcnow(), self.lease_s):
                        return
            except Exception as exc:  # noqa: BLE001 (a missed beat only shortens the lease)
                log.warning("job %s: lease not renewed (%s)", self.row.id, exc.__class__.__name__)

    def stop(self) -> None:
        self.stopped.set()


def _run_row(app: Flask, row: outbox.Row, *, reraise: bool) -> Any:
    """Run a claimed row, then record how it ended; ``on_failure`` runs when it raised."""
    beat = _Heartbeat(app, row)
    beat.start()
    try:
        result = _call(app, row.func_path, row.args)
    except (Exception, SystemExit) as exc:
        beat.stop()
        # The exception's class only: its text may quote the job's data (names, phones).
        log.error("job %s (%s) failed: %s", row.id, row.func_path, exc.__class__.__name__)
        metrics.job_failed(row.queue)
        with _engine(app).begin() as conn:
            outbox.finish(conn, row, utcnow(), error=exc.__class__.__name__)
        _on_failure(app, row)
        if reraise:
            raise
        return None
    beat.stop()
    with _engine(app).begin() as conn:
        outbox.finish(conn, row, utcnow())
    return result


def _on_failure(app: Flask, row: outbox.Row) -> None:
    if not row.on_failure:
        return
    try:
        _call(app, row.on_failure, row.args)
    except Exception as exc:  # noqa: BLE001
        log.error("on_failure %s of job %s failed: %s", row.on_failure, row.id, exc.__class__.__name__)


def _sweep_abandoned(app: Flask, queue: str | None = None) -> dict[str, int]:
    """Rows whose running process died (lease lapsed): retried, or failed with on_failure called."""
    engine = _engine(app)
    counts: dict[str, int] = {}
    now = utcnow()
    with engine.connect() as conn:
        rows = outbox.due(conn, now, states=("running",), queue=queue)
    for row in rows:
        try:
            with engine.begin() as conn:
                outcome = outbox.give_up_or_retry(conn, row, now, int(app.config["JOBS_MAX_ATTEMPTS"]))
        except sa.exc.IntegrityError:  # a coalesced run was queued meanwhile: next sweep
            continue
        if outcome:
            log.warning("job %s (%s) abandoned by its process: %s", row.id, row.func_path, outcome)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "failed":
                _on_failure(app, row)
    return counts


def run_due(app: Flask, queue: str | None = None, *, reraise: bool = False, limit: int = 1000) -> int:
    """Run the due rows of ``queue`` (both when None) in this thread; returns how many ran."""
    engine = _engine(app)
    lease = int(app.config["JOBS_LEASE_S"])
    ran = 0
    _sweep_abandoned(app, queue)
    while ran < limit:
        with engine.connect() as conn:
            rows = outbox.due(conn, utcnow(), states=("pending",), queue=queue, limit=20)
        if not rows:
            break
        for row in rows:
            with engine.begin() as conn:
                claimed = outbox.claim(conn, row.id, None, utcnow(), lease)
            if claimed is not None:
                ran += 1
                _run_row(app, claimed, reraise=reraise)
    return ran


# Relaying to rq ------------------------------------------------------------------------------------

def queue_names(app: Flask) -> dict[str, str]:
    """The rq queue of each outbox queue; a worker listens to them in this order (interactive first)."""
    return {"interactive": app.config["RQ_QUEUE"], "background": f"{app.config['RQ_QUEUE']}-background"}


def short_redis(app: Flask) -> Any:
    """A Redis client whose every call gives up after REDIS_TIMEOUT_S, without retrying: for the
    relay and /ready, where a stopped or frozen Redis must cost a bounded, short time."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = float(app.config["REDIS_TIMEOUT_S"])
    return Redis.from_url(app.config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout,
                          retry=Retry(NoBackoff(), 0))


def relay(app: Flask, connection: Any | None = None) -> dict[str, int]:
    """Hand due outbox rows to rq (and sweep abandoned ones). Handing twice is harmless: the rq job id
    is the row's id and attempt, and a job whose row is already taken does nothing."""
    from redis.exceptions import RedisError
    from rq import Queue
    from rq.job import Job

    counts = _sweep_abandoned(app)
    engine = _engine(app)
    connection = connection or app.extensions.setdefault("relay_redis", short_redis(app))
    queues = {key: Queue(name, connection=connection) for key, name in queue_names(app).items()}
    with engine.connect() as conn:
        rows = outbox.due(conn, utcnow(), states=("pending", "handed"), limit=500)
    hand_lease = int(app.config["JOBS_HAND_LEASE_S"])
    for row in rows:
        job_id = f"outbox-{row.id}-{row.attempt}"
        try:
            # A handed row not started yet: still in rq (a long queue) or lost with Redis's data
            # (a restart without persistence). Only a lost one is handed again.
            if row.state == "handed" and Job.exists(job_id, connection=connection):
                with engine.begin() as conn:
                    outbox.mark_handed(conn, row, utcnow(), hand_lease)
                continue
            queues[row.queue].enqueue(
                execute, row.func_path, *row.args, job_id=job_id,
                job_timeout=row.timeout_s, result_ttl=3600, failure_ttl=7 * 86400,
                meta={"outbox_id": row.id, "attempt": row.attempt},
                description=f"{row.func_path} (outbox {row.id})")
        except RedisError as exc:
            # Redis is down or slow: the rows wait, the next pass (a commit or the poll) tries again.
            _outage(app).failed(exc, len(rows))
            counts["waiting"] = len(rows)
            break
        with engine.begin() as conn:
            outbox.mark_handed(conn, row, utcnow(), hand_lease)
        counts["handed"] = counts.get("handed", 0) + 1
    else:
        if rows:
            _outage(app).recovered(len(rows))
    return counts


class _Outage:
    """What the relay says about a Redis outage: a warning when it starts, then one a minute while it
    lasts (the relay tries after every commit: at a few hundred orders a second, a line per try would
    bury the log), and when Redis takes jobs again."""

    REPEAT_S = 60.0

    def __init__(self) -> None:
        self.since: float | None = None
        self.said_at = 0.0
        self.tries = 0

    def failed(self, exc: Exception, waiting: int) -> None:
        now = time.monotonic()
        self.tries += 1
        if self.since is None:
            self.since = self.said_at = now
            log.warning("relay: Redis unavailable (%s); %d jobs wait in the outbox", exc.__class__.__name__,
                        waiting)
        elif now - self.said_at >= self.REPEAT_S:
            self.said_at = now
            log.warning("relay: Redis still unavailable (%s) after %.0f s and %d tries; %d jobs wait in "
                        "the outbox", exc.__class__.__name__, now - self.since, self.tries, waiting)

    def recovered(self, handed: int) -> None:
        if self.since is not None:
            log.info("relay: Redis is back after %.0f s; %d waiting jobs handed to it",
                        time.monotonic() - self.since, handed)
            self.since, self.tries = None, 0


def _outage(app: Flask) -> _Outage:
    return app.extensions.setdefault("relay_outage", _Outage())


def drain(app: Flask) -> None:
    """Do the runner's work now, in this thread (JOBS_INLINE; tests re-raise job errors)."""
    if app.config.get("REDIS_URL"):
        relay(app)
    else:
        run_due(app, reraise=app.testing)


# Maintenance: what must happen with no other traffic ------------------------------------------------

# Sweepers of jobs that keep their own heartbeat (label batches, imports): ``sweep(now, stale_after=…)``
# queues again, or fails with its reason, a job whose process died (no heartbeat for JOBS_STALL_S).
SWEEPERS = ("delivery_service.printing.services:sweep_stalled",
            "delivery_service.imports.services:sweep_stalled",
            "delivery_service.notifications.jobs:sweep",  # citizen notifications: scan the log, send due
            "delivery_service.geo.hooks:sweep",  # with rq, the geocoding scan while the log is ahead of it
            # (not a sweeper: queues the day's erasure of personal data once across all nodes)
            "delivery_service.privacy.jobs:schedule_daily")
HEARTBEAT_SWEEPERS = frozenset(SWEEPERS[:2])


def maintain(app: Flask) -> dict[str, Any]:
    """One maintenance pass, run by every process's runner every JOBS_MAINTENANCE_S (several processes
    at once are safe: the sweepers and webhook runs claim what they take by compare-and-set).

    Stalled label batches and imports (no heartbeat for JOBS_STALL_S) are swept; for webhook retries
    that came due one coalesced run is queued (run by a worker with Redis, by this process's
    background runner thread without), so that nothing owed waits for some later commit, and a slow
    receiver never holds up the sweeps of the next pass.
    """
    from delivery_service.webhooks import services as webhooks

    done: dict[str, Any] = {}
    now = utcnow()
    stall = {"stale_after": dt.timedelta(seconds=int(app.config["JOBS_STALL_S"]))}
    with app.app_context():
        for path in SWEEPERS:
            module, _, name = path.partition(":")
            try:
                sweep = getattr(importlib.import_module(module), name)
                result = sweep(now, **stall) if path in HEARTBEAT_SWEEPERS else sweep(now)
                done[module.rsplit(".", 2)[-2]] = {k: len(v) for k, v in result.items()}
            except Exception:  # noqa: BLE001 (the database may be down: the next pass tries again)
                db.session.rollback()
                log.exception("maintenance: %s failed", path)
        try:
            if webhooks.due_endpoints(now):
                # Coalesced like the commits' runs ("due" includes events owed and not being sent:
                # a pass during a burst joins the waiting run rather than adding one).
                from delivery_service.webhooks.hooks import queue_dispatch

                queue_dispatch()
                db.session.commit()
                done["webhooks"] = "queued"
        except Exception:  # noqa: BLE001
            db.session.rollback()
            log.exception("maintenance: webhook retries failed")
        db.session.remove()
    return done


# The runner: a thread per process ------------------------------------------------------------------

class Runner:
    """This process's background work: without Redis, one thread per queue runs due rows (so a label
    batch never waits behind a slow webhook receiver); with Redis, one thread relays rows to rq. They
    wake after each commit that queued a job and every JOBS_POLL_S (retries and due rows with no
    other traffic). Several processes may run one: rows are claimed by compare-and-set."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.poll_s = float(app.config["JOBS_POLL_S"])
        self.wakeups = {key: threading.Event() for key in outbox.QUEUES}
        self.stopping = threading.Event()
        self.maintenance_wakeup = threading.Event()  # set only to stop (commits don't need a pass)
        self.threads: list[threading.Thread] = []
        self.pid = os.getpid()

    def start(self) -> Runner:
        if self.app.config.get("REDIS_URL"):
            targets = {"relay": lambda: relay(self.app)}
        else:
            targets = {key: (lambda key=key: run_due(self.app, key)) for key in outbox.QUEUES}
        for name, work in targets.items():
            event = self.wakeups.get(name, self.wakeups["interactive"])
            self._thread(name, work, event, self.poll_s)
        # its own thread: a webhook receiver that hangs never holds up the jobs
        self._thread("maintenance", lambda: maintain(self.app), self.maintenance_wakeup,
                     float(self.app.config["JOBS_MAINTENANCE_S"]))
        return self

    def _thread(self, name: str, work: Any, event: threading.Event, every_s: float) -> None:
        thread = threading.Thread(target=self._loop, args=(work, event, every_s), name=f"jobs-{name}",
                                  daemon=True)
        thread.start()
        self.threads.append(thread)

    def _loop(self, work: Any, event: threading.Event, every_s: float) -> None:
        while not self.stopping.is_set():
            try:
                work()
            except Exception:  # noqa: BLE001 (the database may be down: try again at the next poll)
                log.exception("jobs runner: pass failed")
            event.wait(every_s)
            event.clear()

    def wake(self) -> None:
        for event in self.wakeups.values():
            event.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.wake()
        self.maintenance_wakeup.set()
        for thread in self.threads:
            thread.join(timeout)


_runner_lock = threading.Lock()


def runner(app: Flask) -> Runner:
    """This process's runner for ``app``, started on first use (a forked process starts its own)."""
    with _runner_lock:
        current = app.extensions.get("jobs_runner")
        if current is None or current.pid != os.getpid():
            current = app.extensions["jobs_runner"] = Runner(app).start()
        return current


def stop_runner(app: Flask) -> None:
    current = app.extensions.pop("jobs_runner", None)
    if current is not None:
        current.stop()


# rq: the worker side -------------------------------------------------------------------------------

def execute(func_path: str, *args: Any) -> Any:
    """The rq entry point: runs a job function inside the worker's app. An outbox job (its row id in
    the rq job's meta) runs only if it can claim its row, and records how it ended there."""
    global _worker_app
    if _worker_app is None:
        from delivery_service import create_app

        _worker_app = create_app()
        _worker_app.extensions["jobs_no_runner"] = True  # a work-horse: the worker's loop relays
    from rq import get_current_job

    job = get_current_job()
    meta = (job.meta or {}) if job is not None else {}
    if "outbox_id" not in meta:  # scheduled directly on rq (weekly reports, webhook retries)
        return _call(_worker_app, func_path, args)
    with _engine(_worker_app).begin() as conn:
        row = outbox.claim(conn, meta["outbox_id"], meta["attempt"], utcnow(),
                           int(_worker_app.config["JOBS_LEASE_S"]))
    if row is None:
        log.info("job %s: already run or running elsewhere; nothing to do", meta["outbox_id"])
        return None
    return _run_row(_worker_app, row, reraise=True)


def failed(job, connection, exc_type, exc_value, traceback) -> None:  # noqa: ANN001
    """rq's failure callback for jobs enqueued on rq directly with ``meta["on_failure"]``."""
    on_failure = (job.meta or {}).get("on_failure")
    if not on_failure or "outbox_id" in (job.meta or {}):
        return
    _func_path, *args = job.args
    log.error("job %s failed (%s); running %s", job.id, getattr(exc_type, "__name__", exc_type), on_failure)
    execute(on_failure, *args)


def use_app_for_worker(app: Flask) -> None:
    """Make rq jobs of this process run in ``app`` (the worker command and tests call this)."""
    global _worker_app
    _worker_app = app


def run_worker(app: Flask, *, burst: bool = False, simple: bool = False, on_connect: Any = None,
               queues: tuple[str, ...] = outbox.QUEUES) -> None:
    """The ``delivery-service worker`` loop: rq's worker on ``queues`` (by default both, interactive
    first; a worker per queue keeps label batches and imports clear of long background jobs), supervised
    so that a Redis outage, idle or mid-job, never ends it: rq's ``work()`` returns (or raises) on a
    connection error; this starts a new one when Redis answers again, and with it rq's scheduler. The
    outbox's waiting rows are handed over at each start and with rq's maintenance (every
    JOBS_WORKER_MAINTENANCE_S, idle or not), as is the maintenance pass. ``on_connect`` runs at each
    start."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue, SimpleWorker, Worker

    unknown = set(queues) - set(outbox.QUEUES)
    if unknown or not queues:
        raise ValueError(f"unknown queues {sorted(unknown)}: choose from {', '.join(outbox.QUEUES)}")
    use_app_for_worker(app)
    app.extensions["jobs_no_runner"] = True  # no threads in a process that forks work-horses
    stop = threading.Event()
    every_s = int(app.config["JOBS_WORKER_MAINTENANCE_S"])

    class _Stoppable:
        def request_stop(self, signum, frame):  # noqa: ANN001, ANN202
            stop.set()  # rq's own SIGINT/SIGTERM handling (warm shut-down) goes on as usual
            return super().request_stop(signum, frame)  # type: ignore[misc]

        @property
        def dequeue_timeout(self) -> int:
            # rq's idle worker blocks on Redis for worker_ttl - 15 s (405 s) and runs its maintenance
            # only between those waits: bounded by ours, the maintenance pass (stalled label batches
            # and imports, webhook retries) runs every JOBS_WORKER_MAINTENANCE_S when idle too.
            return max(1, min(super().dequeue_timeout, every_s))  # type: ignore[misc]

        def run_maintenance_tasks(self):  # noqa: ANN202
            # The relay and the maintenance pass run here, in rq's main loop between jobs, not in
            # threads: a thread busy with the database or a lock while rq forks a work-horse could
            # leave the child waiting on it for good (seen once under load: a job hung).
            super().run_maintenance_tasks()  # type: ignore[misc]
            for work in (relay, maintain):
                try:
                    work(app)
                except Exception:  # noqa: BLE001 (Redis or the database may be down: next time)
                    log.exception("worker: %s failed", work.__name__)

    cls = type("DeliveryWorker", (_Stoppable, SimpleWorker if simple else Worker), {})
    # No socket timeout: rq's blocking dequeue waits longer than any short one. Connecting is bounded.
    connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, health_check_interval=30)
    names = queue_names(app)
    rq_queues = [Queue(names[key], connection=connection) for key in outbox.QUEUES if key in queues]
    delay = 1.0
    try:
        while not stop.is_set():
            try:
                relay(app)  # rows that waited for Redis go first to rq (a no-op when nothing waits)
                if on_connect is not None:
                    on_connect()
                # rq's registry clean-up and scheduler restart every JOBS_WORKER_MAINTENANCE_S, not
                # every 10 minutes: a scheduler lost in a Redis blip comes back within that.
                # A busy worker beats as often as an idle one (rq: every 30 s), so that a worker
                # without a heartbeat for 2 × JOBS_WORKER_MAINTENANCE_S is dead (heartbeat_max_age).
                worker = cls(rq_queues, connection=connection,
                             maintenance_interval=every_s, job_monitoring_interval=min(every_s, 30))
                worker.work(burst=burst, with_scheduler=not burst)
                if burst:
                    return
                delay = 1.0
            except RedisError as exc:
                log.error("worker: Redis unavailable (%s); retrying in %.0f s", exc.__class__.__name__, delay)
            if stop.is_set():
                return
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    finally:
        connection.close()


# Fork safety ---------------------------------------------------------------------------------------

_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _dispose_in_child() -> None:
    # A forked child (rq's work-horse, a gunicorn worker) must not use its parent's pooled database
    # connections: two processes on one connection corrupt its protocol state (seen as
    # DuplicatePreparedStatement). close=False leaves the parent's connections alone.
    for engine in list(_engines):
        engine.dispose(close=False)


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL"):
        from redis import Redis
        from rq import Queue

        # Bounded: a frozen Redis must not hold a background thread (a webhook retry's enqueue_in, the
        # weekly schedule) for good; rq's worker has a connection of its own (run_worker).
        connection = Redis.from_url(app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
        app.extensions["redis"] = connection
        names = queue_names(app)
        app.extensions["rq_queues"] = {key: Queue(name, connection=connection) for key, name in names.items()}
        app.extensions["rq_queue"] = app.extensions["rq_queues"]["interactive"]
        # The rate limits' storage is Redis too (create_app); while it fails, count in the database,
        # shared by every process, not per process (the limiter was set up just before this).
        from delivery_service import extensions, ratelimits

        ratelimits.fall_back_to_database(extensions.limiter)
    _engines.add(_engine(app))
    if not sa.event.contains(Session, "after_commit", _after_commit):
        sa.event.listen(Session, "after_commit", _after_commit)
        sa.event.listen(Session, "after_transaction_end", _after_transaction_end)
        sa.event.listen(Session, "after_rollback", _after_rollback)
        os.register_at_fork(after_in_child=_dispose_in_child)


# Workers ------------------------------------------------------------------------------------------

# /ready: jobs due this long with no live worker for their queue are a fault. Short, but not 0: in a
# deployment whose workers start a few seconds after the web, the first jobs wait for them meanwhile.
WORKER_GRACE_S = 15


def heartbeat_max_age(app: Flask) -> dt.timedelta:
    """How old a worker's last heartbeat may be while it is alive: ``delivery-service worker`` beats
    every JOBS_WORKER_MAINTENANCE_S, idle (its dequeue wait) or busy (its job monitoring interval;
    see run_worker), so one missed beat and 5 s. A worker killed outright stays in rq's registry for
    its TTL (8 minutes): its heartbeat's age tells. (``--simple`` runs jobs in the worker's own
    process, which does not beat meanwhile: a long job shows it as stopped.)"""
    return dt.timedelta(seconds=2 * int(app.config["JOBS_WORKER_MAINTENANCE_S"]) + 5)


def workers(app: Flask, connection: Any | None = None) -> list[dict[str, Any]]:
    """The rq workers registered on the service's queues (rq's worker registry), by name: ``name``,
    ``queues`` (the outbox's: interactive, background), ``state`` (rq's: idle, busy, started,
    suspended…), ``last_heartbeat`` (UTC) and ``alive`` (a heartbeat within ``heartbeat_max_age``).
    Raises Redis's errors (with ``short_redis``, after REDIS_TIMEOUT_S)."""
    from rq import Queue, Worker

    connection = connection or app.extensions.setdefault("ready_redis", short_redis(app))
    ours = {name: key for key, name in queue_names(app).items()}
    found: dict[str, Any] = {}
    for name in ours:
        for worker in Worker.all(queue=Queue(name, connection=connection)):
            found[worker.name] = worker
    oldest = utcnow() - heartbeat_max_age(app)
    listed = []
    for name in sorted(found):
        worker = found[name]
        beat = worker.last_heartbeat
        listed.append({"name": name, "queues": [ours[q] for q in worker.queue_names() if q in ours],
                       "state": worker.get_state(), "last_heartbeat": beat,
                       "alive": beat is not None and beat >= oldest})
    return listed


def worker_status(app: Flask, *, list_workers: bool = True) -> dict[str, Any]:
    """What the service knows of its background processes: the one answer of /ready, /admin/jobs and a
    label batch's page. ``mode`` "in_process" (no REDIS_URL: each web process runs the jobs itself) or
    "rq"; with rq, ``redis`` ("ok" or the error's class), ``workers`` (``workers``; empty when Redis does
    not answer, or when not ``list_workers``: a ping only) and ``served``, the outbox queues a live,
    not suspended worker listens to (None when unknown). Bounded by REDIS_TIMEOUT_S a call."""
    if not app.config.get("REDIS_URL"):
        return {"mode": "in_process", "redis": None, "workers": [], "served": None}
    client = app.extensions.setdefault("ready_redis", short_redis(app))
    try:
        client.ping()
        listed = workers(app, client) if list_workers else []
    except Exception as exc:  # noqa: BLE001 (down, frozen, refused: the callers say so)
        return {"mode": "rq", "redis": exc.__class__.__name__, "workers": [], "served": None}
    served = ({queue for w in listed if w["alive"] and w["state"] != "suspended" for queue in w["queues"]}
              if list_workers else None)
    return {"mode": "rq", "redis": "ok", "workers": listed, "served": served}


def no_worker_for(app: Flask, queue: str) -> bool:
    """Whether a job queued now on the outbox ``queue`` waits for a process that is not there: with
    Redis, when Redis does not answer or no live worker listens to the queue (``worker_status``); never
    without Redis (the web processes run the jobs). A worker killed outright counts as alive until its
    heartbeat is older than ``heartbeat_max_age``."""
    status = worker_status(app)
    if status["mode"] != "rq":
        return False
    return status["redis"] != "ok" or queue not in status["served"]


def _workers_check(status: dict[str, Any], waiting: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """/ready's check of the workers, from ``worker_status``: which of the queues whose jobs waited
    WORKER_GRACE_S no live worker listens to."""
    late = _late(waiting)
    return {"alive": [w["name"] for w in status["workers"] if w["alive"]],
            "waiting": {q: waiting[q] for q in late},
            "queues_without_worker": [q for q in late if q not in status["served"]],
            "grace_s": WORKER_GRACE_S}


def _late(waiting: dict[str, dict[str, Any]]) -> list[str]:
    """The queues whose oldest due job has waited WORKER_GRACE_S: before that, a worker or not, nothing
    is held up (and /ready does not list the workers)."""
    return [queue for queue in outbox.QUEUES
            if waiting.get(queue, {}).get("oldest_due_s", 0) > WORKER_GRACE_S]


def readiness(app: Flask, *, node: bool = False) -> tuple[bool, dict[str, Any]]:
    """What /ready reports: the database, its migrations, Redis (when configured), the outbox backlog,
    and with Redis, once jobs have waited WORKER_GRACE_S, whether a live rq worker listens to their
    queue (``workers``; handed to rq with none alive, they would wait for good).

    ``node`` (``/ready?scope=node``, for a load balancer's health check): only what makes this node
    unfit while another may be fine (its database connection, its code ahead of the schema) fails;
    Redis and the backlog are shared by every node, and the nodes keep answering without them, so they
    are reported under ``warnings``: else one Redis outage or a stopped worker takes every node out."""
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    shared: list[str] = []
    waiting: dict[str, dict[str, Any]] = {}
    engine = _engine(app)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = set(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
            heads = _migration_heads(app)
            checks["migrations"] = {"current": sorted(current), "head": sorted(heads)}
            if current != heads:
                reasons.append("database migrations are not at head")
            checks["outbox"] = outbox.backlog(conn, utcnow())
            if checks["outbox"]["oldest_due_s"] > int(app.config["JOBS_BACKLOG_MAX_AGE_S"]):
                (shared if node else reasons).append("background jobs are waiting too long")
            if app.config.get("REDIS_URL") and checks["outbox"]["due"]:
                waiting = outbox.backlog_by_queue(conn, utcnow())
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = exc.__class__.__name__
        reasons.append("database unreachable")
    if app.config.get("REDIS_URL"):
        # Jobs handed to rq with no worker alive to run them wait for good: say so within
        # WORKER_GRACE_S, not after JOBS_BACKLOG_MAX_AGE_S (the workers are listed only then).
        late = bool(_late(waiting))
        status = worker_status(app, list_workers=late)
        checks["redis"] = status["redis"]
        if status["redis"] != "ok":
            (shared if node else reasons).append("redis unreachable")
        elif late:
            found = checks["workers"] = _workers_check(status, waiting)
            if found["queues_without_worker"]:
                (shared if node else reasons).append("no background worker alive for the waiting jobs")
    if shared:
        checks["warnings"] = shared
    return not reasons, {"status": "ready" if not reasons else "not ready", "reasons": reasons, **checks}


def _migration_heads(app: Flask) -> set[str]:
    heads = app.extensions.get("migration_heads")
    if heads is None:
        from alembic.script import ScriptDirectory

        with app.app_context():
            config = app.extensions["migrate"].migrate.get_config()
        heads = app.extensions["migration_heads"] = set(ScriptDirectory.from_config(config).get_heads())
    return heads


def wait_idle(app: Flask, timeout: float = 30.0) -> bool:
    """Until no job is owed or running (tests, and the CLI before exiting); False on timeout."""
    engine = _engine(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            open_rows = conn.scalar(sa.select(sa.func.count()).select_from(outbox.T)
                                    .where(outbox.T.c.state.in_(("pending", "handed", "running"))))
        if not open_rows:
            return True
        runner_ = app.extensions.get("jobs_runner")
        if runner_ is not None:
            runner_.wake()
        time.sleep(0.05)
    return False
