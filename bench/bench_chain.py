"""The hash chain's cost: how fast it verifies, and what it adds to each write.

Verification (``civic audit verify``): a store of ``--events`` synthetic events
(states of a realistic size) is written once, then

* ``read only``: paging through the notification log and the chain table, no
  hashing (the floor: what reading costs);
* ``raw sha256``: that read plus one SHA-256 over each row's state bytes;
* ``verify_chain``: the real verification (canonical bytes, chained SHA-256,
  comparison with the stored links);

all in events/s, in the same run. With ``--history N``, verification runs over the
store of N events generated through the application (``bench/civic_history.py``,
cached under ``var/bench``: real events, chained by the recorder as they were
committed) instead of the synthetic one.

Write path: ``--writers`` threads each save single-event commands to the
group-commit recorder, once with the chain and once with its hook replaced by a
no-op, in fresh stores of the same run: saves/s with vs without the chain.

Run: ``.venv/bin/python bench/bench_chain.py [--events 200000] [--saves 4000]``
or ``.venv/bin/python bench/bench_chain.py --history 1000000 --skip-writes``
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.civic_history import ensure_history, open_recorder  # noqa: E402
from infra.event_store import GroupCommitSQLiteRecorder  # noqa: E402
from infra.hash_chain import notifications, verify_chain  # noqa: E402

TOPIC = "domain.passbook:Passbook.PointsAwarded"


def _state(i: int) -> bytes:
    """About the size of a real PointsAwarded event (~420 bytes of JSON)."""
    return (
        '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-03-01T09:00:00.123456+00:00"},'
        f'"actor":"key:0123456789abcdef","lot_id":{{"_type_":"uuid_hex","_data_":"{uuid4().hex}"}},'
        f'"kind":"service","points":{i % 97},"source_id":{{"_type_":"uuid_hex","_data_":'
        f'"{uuid4().hex}"}},"activity_id":null,"minutes":{i % 240},"reason":"confirmed service",'
        '"awarded_at":{"_type_":"datetime_iso","_data_":"2026-03-01T09:00:00+00:00"},'
        '"expires_at":null}'
    ).encode()


def _recorder(path: Path, *, chained: bool = True) -> GroupCommitSQLiteRecorder:
    recorder = GroupCommitSQLiteRecorder(SQLiteDatastore(str(path), lock_timeout=30))
    if not chained:
        recorder.chain.append = _no_op  # type: ignore[method-assign]
    recorder.create_table()
    return recorder


def _no_op(cursor: Any, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
    return None


def fill(recorder: GroupCommitSQLiteRecorder, events: int, per_call: int = 500) -> None:
    for start in range(0, events, per_call):
        batch = [
            StoredEvent(uuid4(), 1, TOPIC, _state(i))
            for i in range(start, min(start + per_call, events))
        ]
        recorder.insert_events(batch)


def read_only(recorder: GroupCommitSQLiteRecorder) -> int:
    read, n, after = notifications(recorder), 0, 0
    while page := read(after, 2000):
        n += len(page)
        after = page[-1].id
    after = 0
    while links := recorder.chain.links(after, 2000):
        after = links[-1].position
    return n


def raw_sha256(recorder: GroupCommitSQLiteRecorder) -> int:
    read, n, after = notifications(recorder), 0, 0
    while page := read(after, 2000):
        for e in page:
            hashlib.sha256(e.state).digest()
        n += len(page)
        after = page[-1].id
    after = 0
    while links := recorder.chain.links(after, 2000):
        after = links[-1].position
    return n


def verify(recorder: GroupCommitSQLiteRecorder) -> int:
    report = verify_chain(notifications(recorder), recorder.chain)
    if not report.ok:
        raise SystemExit(f"the bench store does not verify: {report.first_break}")
    return report.events


def timed(label: str, fn: Any, *args: Any) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    n = fn(*args)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = float(n / seconds)
    print(
        f"  {label:<14} {n:>9} events in {seconds:6.2f} s  {rate:>11,.0f} events/s"
        f"  (CPU {cpu:6.2f} s, {n / cpu:>9,.0f} events/s)"
    )
    return rate


def writes(
    path: Path, *, chained: bool, writers: int, saves: int, share: list[float] | None = None
) -> float:
    """Saves/s; with ``share``, also appends the chain's share of the writer thread's
    commit time (a ratio measured on one thread, steadier than rates on a busy machine)."""
    recorder = _recorder(path, chained=chained)
    per_thread = saves // writers
    spent = {"chain": 0.0, "groups": 0.0}
    if share is not None:
        append, commit = recorder.chain.append, recorder._commit_group

        def timed_append(c: Any, ids: Sequence[int], events: Sequence[StoredEvent]) -> None:
            t = time.perf_counter()
            append(c, ids, events)
            spent["chain"] += time.perf_counter() - t

        def timed_commit(jobs: Any) -> None:
            t = time.perf_counter()
            commit(jobs)
            spent["groups"] += time.perf_counter() - t

        recorder.chain.append = timed_append  # type: ignore[method-assign,assignment]
        recorder._commit_group = timed_commit  # type: ignore[method-assign]

    def work() -> None:
        for i in range(per_thread):
            recorder.insert_events([StoredEvent(uuid4(), 1, TOPIC, _state(i))])

    threads = [threading.Thread(target=work) for _ in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    recorder.close()
    if share is not None and spent["groups"]:
        share.append(spent["chain"] / spent["groups"])
    return per_thread * writers / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--saves", type=int, default=4000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--history", type=int, help="verify the generated store of N events")
    parser.add_argument("--seed", type=int, default=7, help="of the generated store")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--skip-writes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        if args.history:
            store = open_recorder(ensure_history(args.data_dir, args.history, args.seed))
            head = store.max_notification_id() or 0
            print(f"store: {head:,} events recorded through the application (generated)")
            started = time.perf_counter()
            read_only(store)  # untimed: the store's pages into the OS cache, as for the rest
            print(f"  (warm-up read, untimed: {time.perf_counter() - started:.1f} s)")
        else:
            store = _recorder(Path(tmp) / "events.sqlite")
            start = time.perf_counter()
            fill(store, args.events)
            print(
                f"store: {args.events} events written in {time.perf_counter() - start:.1f} s "
                "(500 per transaction, chained)"
            )
        print("verification (same store, same run):")
        floor = timed("read only", read_only, store)
        raw = timed("raw sha256", raw_sha256, store)
        rate = timed("verify_chain", verify, store)
        print(
            f"  verify_chain runs at {rate / floor:.0%} of the read-only rate and "
            f"{rate / raw:.0%} of read + raw sha256"
        )
        store.close()
        if args.skip_writes:
            return

        print(f"write path: {args.writers} threads, {args.saves} single-event saves each run")
        results: dict[bool, list[float]] = {}
        shares: list[float] = []
        for round_ in range(args.rounds):  # alternate: the machine is shared
            for chained in (False, True):
                path = Path(tmp) / f"writes-{chained}-{round_}.sqlite"
                rate = writes(
                    path,
                    chained=chained,
                    writers=args.writers,
                    saves=args.saves,
                    share=shares if chained else None,
                )
                results.setdefault(chained, []).append(rate)
        without, with_chain = max(results[False]), max(results[True])
        rounds = ", ".join(
            f"{a:,.0f}/{b:,.0f}" for a, b in zip(results[False], results[True], strict=True)
        )
        print(f"  rounds (without/with): {rounds}")
        print(f"  without chain  {without:>9,.0f} saves/s (best of {args.rounds})")
        print(f"  with chain     {with_chain:>9,.0f} saves/s (best of {args.rounds})")
        print(f"  the chain costs {1 - with_chain / without:.1%} of write throughput")
        print(
            "  the chain's share of the writer thread's commit time: "
            + ", ".join(f"{x:.1%}" for x in shares)
        )


if __name__ == "__main__":
    main()
