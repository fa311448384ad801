#!/usr/bin/env bash
# Install the registry's Pulumi plugins from a local plugin mirror into Pulumi's plugin cache
# ($PULUMI_HOME/plugins), the way `pulumi plugin install` does for a user; the CLI then checks
# their versions against what the SDKs ask for, exactly as with downloaded plugins.
#
# The mirror is a folder of the registry's release tarballs, named as the registry names them
# (pulumi-<kind>-<name>-v<version>-<os>-<arch>.tar.gz). HA_WEB_LAB_PLUGIN_MIRROR names it; its
# default is ../shared/plugins beside the checkout. With no mirror there is nothing to do: the
# CLI downloads the plugins from the registry itself on first use.
# Uses the `pulumi` on PATH. A plugin already in the cache at that version is left alone.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mirror=${HA_WEB_LAB_PLUGIN_MIRROR-$repo_root/../shared/plugins}

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

if [[ -z $mirror || ! -d $mirror ]]; then
  say "no plugin mirror${mirror:+ at $mirror}: the Pulumi CLI downloads plugins from the registry"
  exit 0
fi
command -v pulumi >/dev/null || { say "error: no pulumi on PATH"; exit 1; }
case $(uname -s)-$(uname -m) in
  Linux-x86_64) platform=linux-amd64 ;;
  Linux-aarch64) platform=linux-arm64 ;;
  *) say "error: no plugin builds for $(uname -s) $(uname -m)"; exit 1 ;;
esac

# A language host is part of the CLI's distribution, not of the plugin cache (`pulumi plugin
# install language ...` refuses it): its files go next to the pulumi binary, as in Pulumi's own
# release archives. A CLI that ships its own host (the official one) keeps it.
install_language_host() {
  local name=$1 version=$2 tarball=$3 cli_dir marker
  cli_dir=$(dirname "$(readlink -f "$(command -v pulumi)")")
  marker=$cli_dir/.pulumi-language-$name.version
  if [[ -x $cli_dir/pulumi-language-$name && ! -f $marker ]]; then
    say "language $name: the CLI in $cli_dir ships its own host; leaving it"
  elif [[ -f $marker && $(cat "$marker") == "$version" ]]; then
    say "language $name v$version: next to the CLI in $cli_dir"
  else
    say "language $name v$version: unpacking $tarball next to the CLI in $cli_dir"
    tar -xzf "$tarball" -C "$cli_dir" --exclude='LICENSE*'
    echo "$version" >"$marker"
  fi
}

# "kind name version" of every plugin in the cache, one a line.
installed=$(pulumi plugin ls --json |
  python3 -c 'import json, sys; [print(p["kind"], p["name"], p["version"]) for p in json.load(sys.stdin) or []]')

shopt -s nullglob
found=0
for tarball in "$mirror"/pulumi-*-v*-"$platform".tar.gz; do
  base=${tarball##*/}
  base=${base%-"$platform".tar.gz}   # pulumi-resource-libvirt-v0.5.4
  version=${base##*-v}                # 0.5.4
  kind_name=${base%-v*}               # pulumi-resource-libvirt
  kind_name=${kind_name#pulumi-}      # resource-libvirt
  kind=${kind_name%%-*}
  name=${kind_name#*-}
  found=$((found + 1))
  if [[ $kind == language ]]; then
    install_language_host "$name" "$version" "$tarball"
    continue
  fi
  if grep -qxF "$kind $name $version" <<<"$installed"; then
    say "$kind $name v$version: in the plugin cache"
    continue
  fi
  say "$kind $name v$version: installing from $tarball"
  pulumi plugin install "$kind" "$name" "v$version" --file "$tarball" >&2
done
((found)) || say "warning: $mirror has no $platform plugin tarballs"
