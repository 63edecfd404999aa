"""Prometheus metrics for the event pipeline, in the text exposition format (0.0.4).

Mounted at ``/metrics``: per projection its position, lag, events applied,
failures, dead letters and health; the store's head; this process's command
groups, conflict retries and catching up with other processes' writes; in Kafka
mode the relay's published position, lag and errors. Counters count since this
process started; positions and lags are read live (a lag that cannot be known
right now, e.g. while the broker is unreachable, is left out rather than guessed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.bootstrap import Platform

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


@dataclass
class _Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((tuple(labels.items()), value))

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            yield (
                f"{self.name}{{{inner}}} {_number(value)}"
                if inner
                else (f"{self.name} {_number(value)}")
            )


def _command_families(platform: Platform) -> list[_Family]:
    """The command path of this process: groups, conflicts, others' writes."""
    groups = _Family(
        "civic_command_groups_total",
        "counter",
        "Groups of commands this process ran, each committed in one transaction.",
    )
    commands = _Family(
        "civic_command_jobs_total", "counter", "Requests (single commands or batches) run."
    )
    retries = _Family(
        "civic_command_conflict_retries_total",
        "counter",
        "Groups run again because another process changed one of their aggregates meanwhile.",
    )
    caught_up = _Family(
        "civic_aggregate_cache_caught_up_total",
        "counter",
        "Other processes' events applied to this process's cached aggregates.",
    )
    evicted = _Family(
        "civic_aggregate_cache_evictions_total",
        "counter",
        "Cached aggregates forgotten (to be read again) because another process changed them.",
    )
    lock_waits = _Family(
        "civic_store_write_lock_waits_total",
        "counter",
        "Commits that waited for another process's write transaction to end.",
    )
    pruned = _Family(
        "civic_idempotency_records_pruned_total",
        "counter",
        "Idempotency records this process deleted once past the retention period.",
    )
    checkpoints = _Family(
        "civic_store_wal_checkpoints_total",
        "counter",
        "Checkpoints of the store's write-ahead log run by this process's thread "
        "(infra/wal_checkpoint.py) that copied pages back.",
    )
    wal_pages = _Family(
        "civic_store_wal_pages",
        "gauge",
        "Pages in the write-ahead log at this process's last checkpoint (commits "
        "checkpoint themselves past 10,000: the thread is falling behind).",
    )
    app = platform.app
    # several API workers answer /metrics in turn: each labels its own counters
    pid = str(os.getpid())
    groups.add(app.executor.groups_run, pid=pid)
    commands.add(app.executor.jobs_run, pid=pid)
    retries.add(app.conflict_retries, pid=pid)
    caught_up.add(app.caught_up_with_others, pid=pid)
    evicted.add(app.evicted_changed_elsewhere, pid=pid)
    if app.process_lock is not None:
        lock_waits.add(app.process_lock.waits, pid=pid)
    if platform.pruner is not None:
        pruned.add(platform.pruner.pruned, pid=pid)
    checkpointer = getattr(app.recorder, "checkpointer", None)  # SQLite stores only
    families = [groups, commands, retries, caught_up, evicted, lock_waits, pruned]
    if checkpointer is not None:
        checkpoints.add(checkpointer.checkpoints, pid=pid)
        wal_pages.add(checkpointer.last[1], pid=pid)
        families += [checkpoints, wal_pages]
    return families


def render_prometheus(platform: Platform) -> str:
    """The platform's pipeline metrics as Prometheus text."""
    head = _Family(
        "civic_store_head_position", "gauge", "Global position of the newest stored event."
    )
    head.add(platform.app.head())
    position = _Family(
        "civic_projection_position",
        "gauge",
        "Highest global event position the projection applied.",
    )
    lag = _Family(
        "civic_projection_lag_events", "gauge", "Events the projection has not applied yet."
    )
    applied = _Family(
        "civic_projection_events_applied_total",
        "counter",
        "Events applied by this process's runner (not counting those of types it does not handle).",
    )
    skipped = _Family(
        "civic_projection_duplicates_skipped_total",
        "counter",
        "Redelivered events skipped because they were already applied.",
    )
    failures = _Family(
        "civic_projection_failures_total",
        "counter",
        "Events parked as dead letters plus failed polls, in this process.",
    )
    dead = _Family(
        "civic_projection_dead_letters", "gauge", "Events parked in the projection's dead letters."
    )
    healthy = _Family(
        "civic_projection_healthy", "gauge", "1 when the projection has no dead letters, else 0."
    )
    running = _Family(
        "civic_projection_running", "gauge", "1 when this process runs the projection's runner."
    )
    for name, runner in sorted(platform.runners.items()):
        stats = runner.stats
        parked = runner.dead_letter_count()
        position.add(runner.position, projection=name)
        lag.add(runner.lag(), projection=name)
        applied.add(stats.applied, projection=name)
        skipped.add(stats.duplicates_skipped, projection=name)
        failures.add(stats.failures, projection=name)
        dead.add(parked, projection=name)
        healthy.add(parked == 0, projection=name)
        running.add(runner.running, projection=name)
    families = [head, *_command_families(platform)]
    families += [position, lag, applied, skipped, failures, dead, healthy, running]

    relay = platform.relay
    if relay is not None and relay.running:  # else it runs in its own process (civic relay)
        relay_stats = relay.stats
        published = _Family(
            "civic_relay_published_position",
            "gauge",
            "Global position of the last event committed to Kafka.",
        )
        relay_lag = _Family(
            "civic_relay_lag_events", "gauge", "Stored events not yet committed to Kafka."
        )
        events = _Family(
            "civic_relay_events_published_total", "counter", "Events this process published."
        )
        errors = _Family(
            "civic_relay_errors_total",
            "counter",
            "Failed publishing attempts (each is retried after a back-off).",
        )
        connected = _Family(
            "civic_relay_connected", "gauge", "1 while the relay holds a live producer."
        )
        topic = relay.topic
        published.add(relay_stats.published, topic=topic)
        relay_lag.add(relay.lag(), topic=topic)
        events.add(relay_stats.events, topic=topic)
        errors.add(relay_stats.errors, topic=topic)
        connected.add(relay_stats.connected, topic=topic)
        families += [published, relay_lag, events, errors, connected]

    lines = [line for family in families for line in family.render()]
    return "\n".join(lines) + "\n"
