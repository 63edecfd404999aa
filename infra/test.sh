#!/usr/bin/env bash
# One command: set up everything the test suite needs (packages, a real Apache
# Kafka broker, a real PostgreSQL server, both on 127.0.0.1) and run it all:
# ruff, mypy and pytest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh dev

export CIVIC_KAFKA_PORT=${CIVIC_KAFKA_PORT:-19092}
export CIVIC_KAFKA_CONTROLLER_PORT=${CIVIC_KAFKA_CONTROLLER_PORT:-19093}
export CIVIC_KAFKA_DATA=${CIVIC_KAFKA_DATA:-$PWD/var/test-kafka}
export CIVIC_PG_PORT=${CIVIC_PG_PORT:-55432}
# PostgreSQL runs as an unprivileged OS user, which may not be able to enter the
# checkout (a clone under a 0700 temporary directory): keep its data under /tmp.
export CIVIC_PG_DATA=${CIVIC_PG_DATA:-/tmp/civic-test-postgres-$CIVIC_PG_PORT}

cleanup() {
  bash infra/kafka/kafka.sh stop >/dev/null 2>&1 || true
  bash infra/postgres/postgres.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

bash infra/kafka/kafka.sh install
bash infra/postgres/postgres.sh install
rm -rf "$CIVIC_KAFKA_DATA" "$CIVIC_PG_DATA"
bash infra/kafka/kafka.sh start
bash infra/postgres/postgres.sh start
export CIVIC_KAFKA_BOOTSTRAP="127.0.0.1:$CIVIC_KAFKA_PORT"
export CIVIC_PG_DSN="postgresql://civic:civic@127.0.0.1:$CIVIC_PG_PORT/civic"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
