"""Command throughput over HTTP, against baselines measured in the same run.

    .venv/bin/python -m bench.bench_api [--seconds 10] [--connections 16]

Prints, each next to its baseline:
  1. the plain eventsourcing library saving one-event transactions from 16 threads
     (SQLite, one transaction per save) — what group commit has to beat;
  2. a bare FastAPI POST served by the same uvicorn set-up (uvloop + httptools);
  3. our single-command POSTs (a manual points award, durably committed), 16
     concurrent connections: commands/s and latency percentiles;
  4. batch ingestion: POST /v1/batch with 1,000 commands per request: events/s.
The load generator is wrk (Debian package ``wrk``) with one thread, so that the
server keeps most of the 2 cores; it runs against 127.0.0.1 only.
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
from pathlib import Path
from uuid import uuid4

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

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
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            lat[f"p{pct}_ms"] = value
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, **lat, "non_2xx": float(non2xx.group(1)) if non2xx else 0.0}


# -- 1. the plain library ---------------------------------------------------------------


class Counter(Aggregate):
    @staticmethod
    def create_id() -> object:
        return uuid4()


def library_baseline(data: Path, seconds: float, threads: int) -> float:
    app: Application = Application(
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


def serve(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            *args,
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
    )
    wait_http(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def award_script(volunteers: list[str], token: str, body: str) -> str:
    ids = ",".join(f'"{v}"' for v in volunteers)
    return textwrap.dedent(
        f"""
        local ids = {{{ids}}}
        local n = 0
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.headers["Authorization"] = "Bearer {token}"
        wrk.body = '{body}'
        request = function()
          n = n + 1
          return wrk.format(nil, "/v1/passbooks/" .. ids[(n % #ids) + 1] .. "/awards")
        end
        """
    )


BATCH_CONNECTIONS = 4
BATCH_SIZE = 1000


def batch_script(volunteers: list[str], token: str, connections: int) -> str:
    """One wrk thread per connection, each posting batches for its own slice of the
    volunteers: concurrent batches never touch the same passbook (an import is
    partitioned like this; batches that overlap conflict and retry, which measures
    the conflict, not the ingestion)."""
    share = len(volunteers) // connections
    bodies = []
    for n in range(connections):
        mine = volunteers[n * share : (n + 1) * share]
        items = [
            {
                "idempotency_key": None,
                "command": {
                    "type": "award_points",
                    "volunteer_id": mine[i % len(mine)],
                    "points": 1,
                    "reason": "import",
                },
            }
            for i in range(BATCH_SIZE)
        ]
        bodies.append(json.dumps({"items": items}).replace("'", "\\'"))
    lua_bodies = ",\n".join(f"'{b}'" for b in bodies)
    return textwrap.dedent(
        """
        local bodies = {%s}
        local counter = 0
        function setup(thread)
          counter = counter + 1
          thread:set("slice", counter)
        end
        function init(args)
          wrk.method = "POST"
          wrk.path = "/v1/batch"
          wrk.headers["Content-Type"] = "application/json"
          wrk.headers["Authorization"] = "Bearer %s"
          wrk.body = bodies[slice]
        end
        """
    ) % (lua_bodies, token)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--volunteers", type=int, default=2000)
    parser.add_argument(
        "--no-projections",
        action="store_true",
        help="run the API without its in-process projection runners (as with `civic serve "
        "--workers N`, where they run in the parent process)",
    )
    args = parser.parse_args()
    ensure_wrk()
    data = Path(tempfile.mkdtemp(prefix="civic-bench-"))
    results: dict[str, dict[str, float]] = {}

    print(f"1. plain library, one-event transactions, {args.connections} threads ...")
    results["library_saves"] = {"rps": library_baseline(data, args.seconds, args.connections)}

    print("2. bare FastAPI POST ...")
    bare = data / "bare"
    bare.mkdir()
    (bare / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    proc = serve(["--app-dir", str(bare), "bare_app:app"], {}, port)
    body = json.dumps({"points": 1, "reason": "bench"})
    vols = [str(uuid4()) for _ in range(100)]
    results["bare_fastapi"] = run_wrk(
        f"http://127.0.0.1:{port}", award_script(vols, "x", body), args.seconds, args.connections
    )
    stop(proc)

    print(f"3. civic single-command POSTs (preparing {args.volunteers} volunteers) ...")
    from bench.fixtures import prepare_network  # noqa: PLC0415

    env, token, volunteers = prepare_network(data / "civic", args.volunteers)
    if args.no_projections:
        env["CIVIC_RUN_PROJECTIONS"] = "false"
    port = free_port()
    proc = serve(["--factory", "services.api.app:create_app"], env, port)
    results["civic_post"] = run_wrk(
        f"http://127.0.0.1:{port}",
        award_script(volunteers, token, body),
        args.seconds,
        args.connections,
    )

    print("4. civic batch ingestion (1,000 commands per request) ...")
    batch = run_wrk(
        f"http://127.0.0.1:{port}/v1/batch",
        batch_script(volunteers, token, BATCH_CONNECTIONS),
        args.seconds,
        BATCH_CONNECTIONS,
        threads=BATCH_CONNECTIONS,
    )
    results["civic_batch"] = {**batch, "events_per_s": batch["rps"] * BATCH_SIZE}
    stop(proc)

    lib = results["library_saves"]["rps"]
    bare_rps = results["bare_fastapi"]["rps"]
    post = results["civic_post"]
    print()
    print(f"{'measure':44} {'value':>12}  baseline / ratio")
    print(f"{'plain library saves/s (16 threads)':44} {lib:12,.0f}")
    print(
        f"{'bare FastAPI POST req/s':44} {bare_rps:12,.0f}"
        f"  p99 {results['bare_fastapi'].get('p99_ms', 0):.1f} ms"
    )
    print(
        f"{'civic POST commands/s (durable)':44} {post['rps']:12,.0f}  "
        f"{post['rps'] / lib:.2f}x library, {post['rps'] / bare_rps:.2f}x bare FastAPI"
    )
    print(
        f"{'civic POST latency p50 / p90 / p99 (ms)':44} "
        f"{post.get('p50_ms', 0):5.1f} / {post.get('p90_ms', 0):5.1f} / "
        f"{post.get('p99_ms', 0):5.1f}"
        f"  non-2xx: {post['non_2xx']:.0f}"
    )
    print(
        f"{'civic batch ingestion events/s':44} {results['civic_batch']['events_per_s']:12,.0f}"
        f"  {results['civic_batch']['events_per_s'] / lib:.1f}x library saves"
        f"  non-2xx: {batch['non_2xx']:.0f}"
    )
    print(json.dumps(results))
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
