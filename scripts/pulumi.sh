#!/usr/bin/env bash
# A Pulumi command on a stack with the project's environment (your backend and passphrase, else
# a local backend and a passphrase file) and engine:
#   scripts/pulumi.sh local preview     (the same as `venv/bin/python -m halab pulumi local preview`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec venv/bin/python -m halab pulumi "$@"
