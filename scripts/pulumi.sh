#!/usr/bin/env bash
# Run a Pulumi command on a stack with the project's local backend: scripts/pulumi.sh dev preview
set -euo pipefail
cd "$(dirname "$0")/.."
if (($# < 2)); then
  echo "usage: scripts/pulumi.sh STACK COMMAND [ARGS...]   e.g. scripts/pulumi.sh dev preview" >&2
  exit 2
fi
stack=$1
shift
# shellcheck source=scripts/pulumi-env.sh
source scripts/pulumi-env.sh
if ! command -v pulumi >/dev/null 2>&1; then
  echo "ha-web-lab: no pulumi on PATH: install the Pulumi CLI, or build it here with 'make engine'" >&2
  exit 1
fi
pulumi stack select --create "$stack" >/dev/null
exec pulumi "$@" --stack "$stack"
