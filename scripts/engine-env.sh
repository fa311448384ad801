# shellcheck shell=bash
# Source this file (`. scripts/engine-env.sh`) to use the Pulumi CLI that `make engine` built:
# its bin folder first on PATH, no update check, PULUMI_HOME (the plugin cache) in the project's
# cache so nothing lands in ~/.pulumi (your logins there are still read: PULUMI_CREDENTIALS_PATH),
# and, with a local plugin mirror, automatic plugin downloads off (a plugin missing from the
# mirror fails at once). halab/machine/engine.py says what each
# variable is; this file only takes its export lines, so it defines nothing in your shell.
_ha_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
eval "$(PYTHONPATH="$_ha_root" python3 -m halab.machine.engine --shell-env)"
unset _ha_root
