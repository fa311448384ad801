#!/usr/bin/env bash
# The one test command (README, `make test`, .ci/run): install, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh tests
# The real Pulumi CLI for tests/engine (about 5 minutes from empty caches, seconds after).
python3 -m halab.machine.engine

echo "== ruff"
venv/bin/ruff format --check .
venv/bin/ruff check .
echo "== mypy"
venv/bin/mypy .
echo "== pytest"
# Exit code 5 (no tests collected) must fail too: a test run that ran nothing proves nothing.
venv/bin/python -m pytest "$@"
