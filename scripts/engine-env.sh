# shellcheck shell=sh
# Source this file (`. scripts/engine-env.sh`) to use the engine binaries that
# scripts/build-engine.sh put in the cache: puts their bin folder first on PATH
# and keeps the Pulumi CLI offline (no update check, no plugin downloads).
# PULUMI_HOME defaults to a folder in the same cache, so nothing lands in ~/.pulumi.

_ha_cache="${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}"
_ha_bin="$_ha_cache/engine/bin"

case ":${PATH}:" in
  *":${_ha_bin}:"*) ;;
  *) PATH="${_ha_bin}${PATH:+:$PATH}" ;;
esac
export PATH

export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
: "${PULUMI_HOME:=$_ha_cache/pulumi-home}"
export PULUMI_HOME

if [ ! -x "$_ha_bin/pulumi" ]; then
  echo "engine-env: $_ha_bin/pulumi is missing: run scripts/build-engine.sh first" >&2
fi
unset _ha_cache _ha_bin
