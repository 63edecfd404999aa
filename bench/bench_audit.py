"""Audit and replay figures.

1. **As-of balance** of one volunteer whose passbook holds 10,000 events (awards,
   redemptions, refunds): the latency of ``GET /v1/audit/passbooks/{id}/balance``'s
   service call (median of repeats), next to baselines measured in the same run:
   reading the same 10,000 stored events raw from the recorder, and the library
   rebuilding the aggregate at that version (``repository.get(id, version=...)``).
2. **Replay check** over a generated history (1,000,000 events by default, recorded
   through the application's batch path by ``bench/civic_history.py``, kept under
   ``var/bench``): every read model
   rebuilt into scratch files, compared with served views and the invariants
   reconciled, in a fresh process so its peak memory (max RSS, and with
   ``--tracemalloc`` the peak of Python allocations) is its own; next to the
   baseline of building every served view with the runners (``catch_up``).

Run: ``.venv/bin/python bench/bench_audit.py [--events 1000000] [--seed 7]
[--passbook-events 10000] [--tracemalloc]``
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.civic_history import ensure_history, open_recorder  # noqa: E402 - after the path set-up
from domain.base import acting_as  # noqa: E402
from domain.passbook import AwardKind, Passbook  # noqa: E402
from domain.points import ExpiryPolicy  # noqa: E402
from infra.embedded_stream import EmbeddedStream  # noqa: E402
from infra.settings import Settings  # noqa: E402
from projections.catalog import PROJECTIONS  # noqa: E402
from projections.runner import ProjectionRunner  # noqa: E402
from projections.store import ViewStore  # noqa: E402
from services.audit_replay import service, statement  # noqa: E402
from services.audit_replay.check import run_check  # noqa: E402
from services.bootstrap import build_application  # noqa: E402
from services.principals import SYSTEM  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)


# -- 1. as-of balance ------------------------------------------------------------------


def busy_passbook(work: Path, events: int) -> tuple[Any, UUID, datetime, int]:
    """A passbook with ``events`` events: awards, then redemptions of some of them
    and refunds of some redemptions. Returns (app, volunteer, middle time, version)."""
    app = build_application(
        Settings(data_dir=work, document_secret="bench-document-secret-0123456789ab")  # noqa: S106 - a bench
    )
    volunteer = uuid4()
    policy = ExpiryPolicy()
    now = START
    with acting_as("admin:bench", now):
        passbook = Passbook.open_for(volunteer, [uuid4(), uuid4(), uuid4()])
    n = 1
    while n < events:
        now += timedelta(minutes=30)
        with acting_as("admin:bench", now):
            roll = n % 10
            if roll < 6 or passbook.balance < 10:
                passbook.award(
                    points=10,
                    kind=AwardKind.MANUAL,
                    source_id=uuid4(),
                    reason="bench",
                    now=now,
                    policy=policy,
                )
            elif roll < 9:
                redemption = uuid4()
                passbook.redeem(redemption_id=redemption, points=10, now=now)
                if roll == 8 and n + 1 < events:
                    passbook.refund(redemption_id=redemption, reason="bench")
                    n += 1
            else:
                passbook.deduct(points=1, reason="bench", adjustment_id=uuid4(), now=now)
        n += 1
        if len(passbook.pending_events) >= 1000:
            app.save(passbook)
    app.save(passbook)
    middle = START + (now - START) / 2
    version = service.passbook_balance(app, SYSTEM, volunteer, middle).version
    return app, volunteer, middle, version


def median_ms(fn: Any, repeats: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def bench_as_of(events: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        app, volunteer, middle, version = busy_passbook(work, events)
        passbook_id = Passbook.create_id(volunteer)
        stored = len(app.recorder.select_events(passbook_id))
        raw, _ = median_ms(lambda: app.recorder.select_events(passbook_id), repeats)
        decoded, _ = median_ms(lambda: list(app.events.get(passbook_id)), repeats)
        folded, _ = median_ms(
            lambda: statement.balance_as_of(app.events.get(passbook_id), middle), repeats
        )
        library, _ = median_ms(lambda: app.repository.get(passbook_id, version=version), repeats)
        as_of, balance = median_ms(
            lambda: service.passbook_balance(app, SYSTEM, volunteer, middle), repeats
        )
        full, stmt = median_ms(
            lambda: service.passbook_statement(app, SYSTEM, volunteer, None, None), repeats
        )
        print(f"as-of balance, one passbook of {stored:,} events (median of {repeats}):")
        print(f"  baseline: raw select of the stored events   {raw:8.1f} ms")
        print(f"  read + decode into domain events            {decoded:8.1f} ms")
        print(f"  as-of balance folded from domain events     {folded:8.1f} ms")
        print(f"  library: aggregate at version {version:<6}        {library:8.1f} ms")
        print(
            f"  as-of balance (service)                     {as_of:8.1f} ms"
            f"  ({as_of / raw:.1f}x raw read; balance {balance.balance} at v{balance.version})"
        )
        print(
            f"  full statement ({len(stmt.entries):,} entries)              {full:8.1f} ms"
            f"  ({full / raw:.1f}x raw read)"
        )
        app.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- 2. replay check -------------------------------------------------------------------


def build_served(store: Path, views: Path) -> tuple[int, float, float]:
    recorder = open_recorder(store)
    stream = EmbeddedStream(recorder)
    head = stream.head()
    started = time.perf_counter()
    cpu = time.process_time()
    for name, factory in PROJECTIONS.items():
        runner = ProjectionRunner(factory(), ViewStore(views / f"{name}.sqlite"), stream)
        runner.catch_up(timeout=0.0)
        runner.store.close()
    recorder.close()
    return head, time.perf_counter() - started, time.process_time() - cpu


def _check_child(store: Path, views: Path, trace: bool, out: Any) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if trace:
        tracemalloc.start()
    recorder = open_recorder(store)
    cpu = time.process_time()
    report = run_check(recorder, views, scratch_dir=views.parent)
    cpu = time.process_time() - cpu
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    recorder.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put(
        {
            "ok": report.ok,
            "events": report.events_read,
            "seconds": report.seconds,
            "cpu": cpu,
            "rss_mb": rss_kb / 1024,
            "traced_mb": None if traced is None else traced / 2**20,
            "differences": sum(v.differences for v in report.views),
            "rows": sum(v.rows_compared for v in report.views),
        }
    )


def bench_check(events: int, seed: int, data_dir: Path, regenerate: bool, trace: bool) -> None:
    store = ensure_history(data_dir, events, seed, regenerate=regenerate)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-check-", dir=data_dir))
    views = work / "views"
    views.mkdir()
    try:
        head, served_seconds, served_cpu = build_served(store, views)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_check_child, args=(store, views, trace, queue))
        child.start()
        result = queue.get()
        child.join()
        rate = result["events"] / result["seconds"]
        models = len(PROJECTIONS)
        print(f"replay check over {head:,} events ({models} read models, {result['rows']:,} rows):")
        print(
            f"  baseline: build the {models} served views (catch_up) {head / served_seconds:>9,.0f}"
            f" events/s  ({served_seconds:.1f} s, CPU {served_cpu:.1f} s)"
        )
        print(
            f"  replay check (rebuild + compare + invariants) {rate:>9,.0f} events/s"
            f"  ({result['seconds']:.1f} s, CPU {result['cpu']:.1f} s;"
            f" {rate * served_seconds / head:.2f}x baseline)"
        )
        traced = f", traced Python peak {result['traced_mb']:.0f} MB" if result["traced_mb"] else ""
        print(f"  peak memory: max RSS {result['rss_mb']:.0f} MB{traced}")
        print(
            f"  verdict: {'ok' if result['ok'] else 'DIFFERENCES'}"
            f" ({result['differences']} differences)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history for the check")
    parser.add_argument("--seed", type=int, default=7, help="of the generated history")
    parser.add_argument("--passbook-events", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations")
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--skip-as-of", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if not args.skip_as_of:
        bench_as_of(args.passbook_events, args.repeats)
    if not args.skip_check:
        bench_check(args.events, args.seed, args.data_dir, args.regenerate, args.tracemalloc)


if __name__ == "__main__":
    main()
