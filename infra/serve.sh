#!/usr/bin/env bash
# One command: set up and serve the platform on its embedded default
# (SQLite event store under ./var, in-process stream, no server to install).
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
exec .venv/bin/civic serve "$@"
