# shellcheck shell=bash
# Sourced by the entry scripts beside it, by an absolute path so it holds after a `cd`:
#   . "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
# The one definition of their messages and of the project's cache root. Python has the same
# cache rule in halab/__init__.py (it runs after bootstrap); scripts/engine-env.sh, which users
# source into their own shell, keeps its own line so it defines no functions there.
#
#   say MESSAGE   "NAME: MESSAGE" on stderr, NAME being the sourcing script's name without .sh
#   die MESSAGE   the same, then exit 1
#   HWL_CACHE     $HA_WEB_LAB_CACHE, else $XDG_CACHE_HOME/ha-web-lab, else ~/.cache/ha-web-lab

HWL_SCRIPT=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
# shellcheck disable=SC2034 # read by the scripts that source this file
HWL_CACHE=${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}

say() { printf '%s: %s\n' "$HWL_SCRIPT" "$*" >&2; }
die() {
    say "$*"
    exit 1
}
