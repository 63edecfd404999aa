"""Command throughput over HTTP, against baselines measured in the same run.

    .venv/bin/python -m bench.bench_api [--seconds 10] [--connections 16]
        [--projections in-process|process|none] [--workers 1 2]

Prints, each next to its baseline:
  1. the plain eventsourcing library saving one-event transactions from 16 threads
     (SQLite, one transaction per save) — what group commit has to beat — and the
     same library saving 1,000 one-event aggregates per transaction (its own
     ceiling for batches: no rules, idempotency records or hash chain);
  2. a bare FastAPI POST served by the same uvicorn set-up (uvloop + httptools);
  3. our single-command POSTs (a manual points award, durably committed), 16
     concurrent connections: commands/s and latency percentiles;
  4. batch ingestion: POST /v1/batch with 1,000 commands per request: events/s.
Each HTTP measurement follows a 2 s warm-up and reports the server's CPU time per
request (user + system, of the uvicorn process and its workers, from /proc): on a
shared machine the wall-clock rates move with the load, the CPU cost much less.
With ``--workers 1 2`` the bare and civic POSTs and the batches are measured once per
worker count, each civic run on its own copy of the same prepared store (so none
starts with the histories an earlier run's batches left behind).
``--projections``: the six read models in the API process (``civic serve``, the
default), in a process of their own following the store (``civic serve
--no-projections`` beside ``civic project``: that process's CPU per request is
printed too, and how far behind the store it was when the load stopped), or none.
The load average is printed before and after. The load generator is wrk (Debian
package ``wrk``) with one thread, so that the server keeps most of the 2 cores; it
runs against 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is needed: apt-get install wrk")
    return wrk


def wait_http(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on {port} did not start")


def run_wrk(
    url: str, script: str, seconds: int, connections: int, threads: int = 1
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            f.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            lat[f"p{pct}_ms"] = value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "requests": requests,
        **lat,
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


WARM_UP_SECONDS = 2


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants (the
    uvicorn supervisor and its workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, cpu seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        # after the command name: state, ppid, ..., utime (14th field), stime (15th)
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total, frontier = {pid}, 0.0, [pid]
    while frontier:
        parent = frontier.pop()
        total += stats.get(parent, (0, 0.0))[1]
        children = [p for p, (ppid, _) in stats.items() if ppid == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return total


def measure(
    proc: subprocess.Popen[bytes],
    url: str,
    script: str,
    seconds: int,
    connections: int,
    threads: int = 1,
    projector: subprocess.Popen[bytes] | None = None,
) -> dict[str, float]:
    """wrk against a running server after a warm-up, with the server's CPU time per
    request (and that of the ``projector`` process feeding the read models)."""
    run_wrk(url, script, WARM_UP_SECONDS, connections, threads)
    before = tree_cpu_seconds(proc.pid)
    side = tree_cpu_seconds(projector.pid) if projector else 0.0
    result = run_wrk(url, script, seconds, connections, threads)
    cpu = tree_cpu_seconds(proc.pid) - before
    out = {**result, "cpu_ms_per_request": cpu * 1000 / max(result["requests"], 1)}
    if projector is not None:
        side = tree_cpu_seconds(projector.pid) - side
        out["projector_cpu_ms_per_request"] = side * 1000 / max(result["requests"], 1)
    return out


def start_projector(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``civic project`` (every read model, its default poll interval) following the
    store from its own process."""
    return subprocess.Popen(
        [PY, "-m", "services.cli_stream", "project"],
        env={**os.environ, **env, "CIVIC_LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def projector_lag(data_dir: Path) -> int:
    """Events the slowest read model is behind the store (read from the databases)."""
    import sqlite3  # noqa: PLC0415

    from projections.catalog import PROJECTIONS  # noqa: PLC0415
    from projections.view_files import live_path  # noqa: PLC0415

    with sqlite3.connect(data_dir / "events.sqlite") as conn:
        head = int(conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0] or 0)
    lag = 0
    for name in PROJECTIONS:
        with sqlite3.connect(live_path(data_dir / "views", name)) as conn:
            row = conn.execute("SELECT MAX(position) FROM stream_position").fetchone()
        lag = max(lag, head - int(row[0] or 0))
    return lag


# -- 1. the plain library ---------------------------------------------------------------


class Counter(Aggregate):
    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return uuid4()

    def __init__(self) -> None:
        self.total = 0

    @event("Incremented")
    def increment(self, by: int, reason: str) -> None:
        self.total += by


def library_batch_baseline(data: Path, events: int = 20_000, per_save: int = 1_000) -> float:
    """The library's own ceiling for batches: ``per_save`` aggregates each trigger one
    event and are saved in one transaction (no rules, idempotency records or hash
    chain), events/s."""
    app: Application[UUID] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(data / "libb.db")}
    )
    counters = [Counter() for _ in range(per_save)]
    app.save(*counters)
    started = time.perf_counter()
    for _ in range(events // per_save):
        for counter in counters:
            counter.increment(1, "bench")
        app.save(*counters)
    elapsed = time.perf_counter() - started
    app.close()
    return events // per_save * per_save / elapsed


def library_baseline(data: Path, seconds: float, threads: int) -> float:
    app: Application[UUID] = Application(
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(data / "lib.db")}
    )
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def work(i: int) -> None:
        while time.monotonic() < stop:
            app.save(Counter())
            counts[i] += 1

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    app.close()
    return sum(counts) / seconds


# -- 2. a bare FastAPI POST ------------------------------------------------------------

BARE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI
    from pydantic import BaseModel

    app = FastAPI()

    class Body(BaseModel):
        points: int
        reason: str

    @app.post("/v1/passbooks/{volunteer_id}/awards", status_code=201)
    def award(volunteer_id: str, body: Body) -> dict[str, object]:
        return {"volunteer_id": volunteer_id, "points": body.points}
    """
)


class LogDrain:
    """Reads a server's log lines from a pipe, as a log collector would (journald,
    a container runtime), keeping the last few for a failed start. Writing them to
    a file on the event store's disk instead would stall the server's writes behind
    the store's fsyncs; to the terminal, behind the terminal."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines = 0
        self.tail: deque[bytes] = deque(maxlen=40)
        self._stream = stream
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for line in self._stream:
            self.lines += 1
            self.tail.append(line)


def serve(
    args: list[str], env: dict[str, str], port: int, workers: int = 1
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            *args,
            *(["--workers", str(workers)] if workers > 1 else []),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None  # piped just above
    drain = LogDrain(proc.stderr)
    try:
        wait_http(port)
    except SystemExit:
        sys.stderr.write(b"".join(drain.tail).decode(errors="replace"))
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# Idempotency keys, unique per wrk run and thread: the run's start second and the
# thread's number, then a counter (the warm-up and the measured run are >= 2 s apart).
LUA_KEYS = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("slice", counter)
end
local prefix = nil
local function next_key(n)
  if prefix == nil then prefix = string.format("bench-%d-%d-", os.time(), slice or 0) end
  return prefix .. n
end
"""


def award_script(volunteers: list[str], token: str, body: str, keyed: bool = False) -> str:
    """One award per request, round the volunteers; ``keyed``: each with an
    ``Idempotency-Key`` of its own, as a station app sends them."""
    ids = ",".join(f'"{v}"' for v in volunteers)
    headers = (
        "local h = {}\n"
        "          for k, v in pairs(wrk.headers) do h[k] = v end\n"
        '          h["Idempotency-Key"] = next_key(n)'
        if keyed
        else "local h = nil"
    )
    return LUA_KEYS + textwrap.dedent(
        f"""
        local ids = {{{ids}}}
        local n = 0
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.headers["Authorization"] = "Bearer {token}"
        wrk.body = '{body}'
        request = function()
          n = n + 1
          {headers}
          return wrk.format(nil, "/v1/passbooks/" .. ids[(n % #ids) + 1] .. "/awards", h)
        end
        """
    )


BATCH_CONNECTIONS = 4
BATCH_SIZE = 1000


def batch_script(volunteers: list[str], token: str, connections: int, keyed: bool = False) -> str:
    """One wrk thread per connection, each posting batches for its own slice of the
    volunteers: concurrent batches never touch the same passbook (an import is
    partitioned like this; batches that overlap conflict and retry, which measures
    the conflict, not the ingestion). ``keyed``: every item with an idempotency key
    of its own, as an import sends them (the body is then built per request)."""
    share = len(volunteers) // connections
    slices = []
    for n in range(connections):
        mine = volunteers[n * share : (n + 1) * share]
        commands = [
            json.dumps(
                {
                    "type": "award_points",
                    "volunteer_id": mine[i % len(mine)],
                    "points": 1,
                    "reason": "import",
                }
            )
            for i in range(BATCH_SIZE)
        ]
        slices.append("{" + ",".join(f"'{cmd}'" for cmd in commands) + "}")
    lua_slices = ",\n".join(slices)
    return LUA_KEYS + textwrap.dedent(
        """
        local slices = {%s}
        local keyed = %s
        local n = 0
        local function body()
          local commands = slices[slice]
          local items = {}
          n = n + 1
          for i = 1, #commands do
            local key = keyed and ('"' .. next_key(n .. "-" .. i) .. '"') or "null"
            items[i] = '{"idempotency_key":' .. key .. ',"command":' .. commands[i] .. '}'
          end
          return '{"items":[' .. table.concat(items, ",") .. ']}'
        end
        function init(args)
          wrk.method = "POST"
          wrk.path = "/v1/batch"
          wrk.headers["Content-Type"] = "application/json"
          wrk.headers["Authorization"] = "Bearer %s"
          if not keyed then wrk.body = body() end
        end
        if keyed then
          request = function()
            return wrk.format(nil, nil, nil, body())
          end
        end
        """
    ) % (lua_slices, "true" if keyed else "false", token)


def loadavg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def post_row(name: str, bare: dict[str, float], civic: dict[str, float], key: str) -> str:
    ratio = civic[key] / bare[key] if bare.get(key) else float("nan")
    fmt = "{:12,.0f}" if key == "rps" else "{:12.2f}"
    return (
        f"  {name:40} {fmt.format(bare.get(key, 0))} {fmt.format(civic.get(key, 0))}  {ratio:6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--volunteers", type=int, default=2000)
    parser.add_argument(
        "--projections",
        choices=("in-process", "process", "none"),
        default="in-process",
        help="where the read models run: in the API process (`civic serve`), in a process "
        "of their own (`civic serve --no-projections` and `civic project`), or nowhere",
    )
    parser.add_argument(
        "--no-projections",
        action="store_const",
        const="none",
        dest="projections",
        help="the same as --projections none (as with `civic serve --workers N`, where "
        "the read models run in the parent process)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="uvicorn worker counts to compare (bare and civic POSTs once per count; with "
        "more than one worker the civic API runs without projection runners)",
    )
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="every civic POST and every batch item with an idempotency key of its own "
        "(as station apps and imports send them); without it, none",
    )
    args = parser.parse_args()
    ensure_wrk()
    data = Path(tempfile.mkdtemp(prefix="civic-bench-"))
    results: dict[str, dict[str, float]] = {}
    load_before = loadavg()

    print(f"1. plain library, one-event transactions, {args.connections} threads ...")
    results["library_saves"] = {"rps": library_baseline(data, args.seconds, args.connections)}
    print("   and the same library saving 1,000 one-event aggregates per transaction ...")
    results["library_batch"] = {"events_per_s": library_batch_baseline(data)}

    bare = data / "bare"
    bare.mkdir()
    (bare / "bare_app.py").write_text(BARE_APP)
    body = json.dumps({"points": 1, "reason": "bench"})
    vols = [str(uuid4()) for _ in range(100)]
    print(f"   preparing {args.volunteers} volunteers ...")
    from bench.fixtures import prepare_network  # noqa: PLC0415

    # every worker count starts from its own copy of the same store: the same
    # histories to load into cold caches (a batch run leaves long ones behind)
    template = data / "civic"
    env, token, volunteers = prepare_network(template, args.volunteers)
    for workers in args.workers:
        print(f"2. bare FastAPI POST, {workers} worker(s) ...")
        port = free_port()
        proc = serve(["--app-dir", str(bare), "bare_app:app"], {}, port, workers)
        results[f"bare_fastapi_w{workers}"] = measure(
            proc,
            f"http://127.0.0.1:{port}",
            award_script(vols, "x", body),
            args.seconds,
            args.connections,
        )
        stop(proc)

        civic(args, workers, data, template, env, (token, volunteers, body), results)

    report(results, args, load_before)
    shutil.rmtree(data, ignore_errors=True)


def civic(
    args: argparse.Namespace,
    workers: int,
    data: Path,
    template: Path,
    env: dict[str, str],
    inputs: tuple[str, list[str], str],
    results: dict[str, dict[str, float]],
) -> None:
    """Single POSTs, then batches, on a copy of ``template`` served by ``workers``."""
    token, volunteers, body = inputs
    print(f"3. civic single-command POSTs, {workers} worker(s) ...")
    copy = data / f"civic-w{workers}"
    shutil.copytree(template, copy)
    civic_env = {**env, "CIVIC_DATA_DIR": str(copy)}
    if args.projections != "in-process" or workers > 1:
        civic_env["CIVIC_RUN_PROJECTIONS"] = "false"
    port = free_port()
    proc = serve(["--factory", "services.api.app:create_app"], civic_env, port, workers)
    projector = start_projector(civic_env) if args.projections == "process" else None
    results[f"civic_post_w{workers}"] = measure(
        proc,
        f"http://127.0.0.1:{port}",
        award_script(volunteers, token, body, keyed=args.idempotency_keys),
        args.seconds,
        args.connections,
        projector=projector,
    )
    if projector is not None:
        results[f"civic_post_w{workers}"]["projector_lag"] = projector_lag(copy)
    print(f"4. civic batch ingestion (1,000 commands per request), {workers} worker(s) ...")
    batch = measure(
        proc,
        f"http://127.0.0.1:{port}/v1/batch",
        batch_script(volunteers, token, BATCH_CONNECTIONS, keyed=args.idempotency_keys),
        args.seconds,
        BATCH_CONNECTIONS,
        threads=BATCH_CONNECTIONS,
    )
    results[f"civic_batch_w{workers}"] = {**batch, "events_per_s": batch["rps"] * BATCH_SIZE}
    stop(proc)
    if projector is not None:
        stop(projector)


def report(
    results: dict[str, dict[str, float]], args: argparse.Namespace, load_before: str
) -> None:
    lib = results["library_saves"]["rps"]
    print()
    print(f"load average (1 / 5 / 15 min): before {load_before}, after {loadavg()}")
    print(f"plain library saves/s ({args.connections} threads): {lib:,.0f}")
    for workers in args.workers:
        b, c = results[f"bare_fastapi_w{workers}"], results[f"civic_post_w{workers}"]
        print()
        where = {
            "in-process": "read models in the API process",
            "process": "read models in a process of their own",
            "none": "no read models",
        }[args.projections if workers == 1 or args.projections == "process" else "none"]
        keys = ", an idempotency key each" if args.idempotency_keys else ""
        print(f"POST, {args.connections} connections, {workers} worker(s), {where}{keys}:")
        print(f"  {'measure':40} {'bare FastAPI':>12} {'civic':>12}  civic/bare")
        print(post_row("requests/s (civic: durable commands)", b, c, "rps"))
        print(post_row("latency p50 (ms)", b, c, "p50_ms"))
        print(post_row("latency p90 (ms)", b, c, "p90_ms"))
        print(post_row("latency p99 (ms)", b, c, "p99_ms"))
        print(post_row("server CPU per request (ms)", b, c, "cpu_ms_per_request"))
        print(f"  civic: {c['rps'] / lib:.2f}x library saves; non-2xx: {c['non_2xx']:.0f}")
        if "projector_cpu_ms_per_request" in c:
            print(
                f"  read-model process: {c['projector_cpu_ms_per_request']:.2f} ms CPU per"
                f" request; {c['projector_lag']:.0f} events behind the store as the load stopped"
            )
    print()
    for workers in args.workers:
        batch_line(results, args, workers)
    print(json.dumps(results))


def batch_line(
    results: dict[str, dict[str, float]], args: argparse.Namespace, workers: int
) -> None:
    lib = results["library_saves"]["rps"]
    batch = results[f"civic_batch_w{workers}"]
    keys = " (an idempotency key per item)" if args.idempotency_keys else ""
    print(
        f"batch ingestion, {workers} worker(s){keys}:"
        f" {batch['events_per_s']:,.0f} events/s"
        f" = {batch['events_per_s'] / lib:.1f}x library saves,"
        f" {batch['events_per_s'] / results['library_batch']['events_per_s']:.2f}x the library"
        f" saving 1,000 per transaction ({results['library_batch']['events_per_s']:,.0f}/s);"
        f" server CPU per event {batch['cpu_ms_per_request'] / BATCH_SIZE * 1000:.0f} µs;"
        f" non-2xx: {batch['non_2xx']:.0f}"
    )


if __name__ == "__main__":
    main()
