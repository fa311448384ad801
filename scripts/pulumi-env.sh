# shellcheck shell=bash
# Sourced by scripts/pulumi.sh and scripts/e2e.sh, and read by halab/up.py (make up): a Pulumi with no account.
# - State in a local file backend (PULUMI_BACKEND_URL), never Pulumi Cloud.
# - Secrets encrypted with a passphrase kept in a file of yours (made once, mode 600);
#   set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE to use your own.
# - The official Pulumi CLI when it is on PATH, else the one scripts/build-engine.sh builds.
hwl_state=${HA_WEB_LAB_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/ha-web-lab}
mkdir -p "$hwl_state/pulumi-state"
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$hwl_state/pulumi-state}
if [[ -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE=$hwl_state/passphrase
  if [[ ! -s $PULUMI_CONFIG_PASSPHRASE_FILE ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$PULUMI_CONFIG_PASSPHRASE_FILE")
    echo "ha-web-lab: made a passphrase for this machine's stack secrets: $PULUMI_CONFIG_PASSPHRASE_FILE (keep it: without it the stacks' secrets cannot be read)" >&2
  fi
fi
export PULUMI_SKIP_UPDATE_CHECK=true
if ! command -v pulumi >/dev/null 2>&1; then
  # shellcheck source=scripts/engine-env.sh
  source "$(dirname "${BASH_SOURCE[0]}")/engine-env.sh"
fi
# The registry's plugins from the local plugin mirror, if there is one (a no-op when they are
# already in the plugin cache, or when there is no mirror and the CLI downloads them itself).
if command -v pulumi >/dev/null 2>&1; then
  "$(dirname "${BASH_SOURCE[0]}")/install-plugins.sh"
fi
