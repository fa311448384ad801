# shellcheck shell=bash
# Source this file (`. scripts/engine-env.sh`) to use the Pulumi CLI that
# scripts/build-engine.sh put in the cache: puts its bin folder first on PATH, skips the update
# check, and keeps PULUMI_HOME (the plugin cache) in the same cache, so nothing lands in ~/.pulumi.
# With a local plugin mirror (scripts/install-plugins.sh) automatic plugin downloads are off, so a
# plugin missing from the mirror fails at once instead of trying the registry; without one the
# CLI downloads plugins as usual.

_ha_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_ha_cache="${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}"
_ha_bin="$_ha_cache/engine/bin"
_ha_mirror="${HA_WEB_LAB_PLUGIN_MIRROR-$_ha_root/../shared/plugins}"

case ":${PATH}:" in
  *":${_ha_bin}:"*) ;;
  *) PATH="${_ha_bin}${PATH:+:$PATH}" ;;
esac
export PATH

export PULUMI_SKIP_UPDATE_CHECK=true
if [ -n "$_ha_mirror" ] && [ -d "$_ha_mirror" ]; then
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
fi
: "${PULUMI_HOME:=$_ha_cache/pulumi-home}"
export PULUMI_HOME

if [ ! -x "$_ha_bin/pulumi" ]; then
  echo "engine-env: $_ha_bin/pulumi is missing: run scripts/build-engine.sh first" >&2
fi
unset _ha_root _ha_cache _ha_bin _ha_mirror
