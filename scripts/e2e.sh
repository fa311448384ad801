#!/usr/bin/env bash
# `make e2e`: the whole product on real VMs on this machine, through the registry's real plugins,
# then nothing left. halab/e2e/launch.py says what it sets up; arguments go to the run
# (`venv/bin/python -m halab e2e-run --help`), e.g. `scripts/e2e.sh --skip drift`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec venv/bin/python -m halab e2e "$@"
