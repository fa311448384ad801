#!/usr/bin/env bash
# The Pulumi engine for machines without the official CLI: the CLI built from the Go module
# proxy, then the registry's plugins from the local plugin mirror (scripts/install-plugins.sh).
#
# The CLI has a small wrapper module, engine/pulumi/ (go.mod + go.sum pin the exact version).
# It is built into a cache folder keyed by version, and bin/ in that cache holds a link to it,
# so `export PATH="$(scripts/build-engine.sh --print-bin-dir):$PATH"` (or
# `. scripts/engine-env.sh`) is all a caller needs. Go's module and build caches live under the
# same cache root: a rerun, also from a fresh clone in another folder, only checks a stamp.
# Plugins are never built or put on PATH here: they go into Pulumi's plugin cache, where the
# CLI checks their versions against what the SDKs ask for, as it does for a user.
#
# Usage: scripts/build-engine.sh [--print-bin-dir]
#   --print-bin-dir  print the bin folder and exit (builds nothing)
# Environment: HA_WEB_LAB_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab),
# HA_WEB_LAB_PLUGIN_MIRROR (see scripts/install-plugins.sh).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod_dir="$repo_root/engine/pulumi"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cache_root=$HWL_CACHE
engine_cache="$cache_root/engine"
bin_dir="$engine_cache/bin"

# What is built: the CLI's main package, the module whose version names the build, the
# variable that gets that version (`pulumi version` and plugin version checks read it), tags.
binary=pulumi
pkg=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
version_module=github.com/pulumi/pulumi/pkg/v3
version_var=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
tags=osusergo,grpcnotrace

case "${1:-}" in
  "") ;;
  --print-bin-dir)
    echo "$bin_dir"
    exit 0
    ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

[[ -f "$mod_dir/go.mod" && -f "$mod_dir/go.sum" ]] || die "missing $mod_dir/go.mod or go.sum"

# Go: the one on PATH when it is as new as go.mod asks, else the pinned toolchain from the Go
# module proxy (golang.org/toolchain: the zip `GOTOOLCHAIN` would fetch), checked against the
# sha256 below and unpacked into the cache. A fresh Debian has no Go this new (bookworm: 1.19).
go_pin=1.26.8
go_pin_sha256=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7 # linux-amd64 zip
go_needed=$(awk '$1 == "go" { print $2 }' "$mod_dir/go.mod")
go_new_enough() {
  local have
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) || return 1
  have=${have#go}
  [[ $(printf '%s\n%s\n' "$go_needed" "$have" | sort -V | head -n1) == "$go_needed" ]]
}
if ! go_new_enough; then
  toolchain="$cache_root/go-toolchain/go$go_pin"
  if [[ ! -x $toolchain/bin/go ]]; then
    [[ $(uname -m) == x86_64 ]] || die "no Go >= $go_needed on PATH; install Go $go_pin for $(uname -m)"
    command -v unzip >/dev/null || die "missing unzip (Debian package unzip; scripts/bootstrap.sh installs it)"
    proxy=${GOPROXY:-https://proxy.golang.org}
    proxy=${proxy%%,*}
    [[ $proxy == http* ]] || proxy=https://proxy.golang.org
    url="$proxy/golang.org/toolchain/@v/v0.0.1-go$go_pin.linux-amd64.zip"
    echo "build-engine: no Go >= $go_needed on PATH: fetching Go $go_pin (70 MB) from $url"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    curl -fsSL --retry 3 -o "$scratch/go.zip" "$url" || die "cannot download $url"
    echo "$go_pin_sha256  $scratch/go.zip" | sha256sum --check --quiet ||
      die "the Go $go_pin download does not match its pinned sha256"
    unzip -q "$scratch/go.zip" -d "$scratch/unpacked"
    mkdir -p "$(dirname "$toolchain")"
    rm -rf "$toolchain"
    mv "$scratch/unpacked/golang.org/toolchain@v0.0.1-go$go_pin.linux-amd64" "$toolchain"
  fi
  export PATH="$toolchain/bin:$PATH"
  go_new_enough || die "the Go at $toolchain is not >= $go_needed"
fi

# Go's own caches under the cache root; never download a toolchain; go.sum as
# committed is the truth (-mod=readonly), so a changed dependency fails loudly.
export GOPATH="$cache_root/go"
export GOMODCACHE="$cache_root/go/pkg/mod"
export GOCACHE="$cache_root/go/build-cache"
export GOTOOLCHAIN=local
export GOFLAGS=-mod=readonly
export CGO_ENABLED=0
go_version=$(go env GOVERSION)
mkdir -p "$engine_cache" "$bin_dir"

t0=$SECONDS
# Reads go.mod/go.sum only; downloads at most the .mod files on a cold cache.
version=$(cd "$mod_dir" && go list -m -f '{{.Version}}' "$version_module") ||
  die "cannot resolve $version_module in $mod_dir/go.mod"
[[ -n "$version" ]] || die "empty version for $version_module in $mod_dir"
out="$engine_cache/pulumi-$version"
# Stamp: what the binary was built from, so a changed wrapper, Go version or flag set rebuilds
# even when the version (the folder name) stays the same.
stamp=$({
  echo "go=$go_version tags=$tags var=$version_var pkg=$pkg"
  cat "$mod_dir/go.mod" "$mod_dir/go.sum"
} | sha256sum | cut -d' ' -f1)

if [[ -x "$out/$binary" && -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]]; then
  result=cached
else
  echo "build-engine: building $binary $version (about 5 minutes from empty caches)" >&2
  mkdir -p "$out"
  rm -f "$out/.stamp"
  (cd "$mod_dir" && go build -trimpath -tags "$tags" -ldflags "-s -w -X $version_var=$version" \
    -o "$out/$binary.tmp" "$pkg") || die "go build of $pkg $version failed"
  mv -f "$out/$binary.tmp" "$out/$binary"
  echo "$stamp" >"$out/.stamp"
  result=built
fi
ln -sfn "$out/$binary" "$bin_dir/$binary.tmp"
mv -Tf "$bin_dir/$binary.tmp" "$bin_dir/$binary"
# Nothing else belongs in bin/: a plugin there would shadow the plugin cache (older layouts
# linked our own stand-in plugins and language host here).
find "$bin_dir" -mindepth 1 -maxdepth 1 ! -name "$binary" -delete
printf 'build-engine: pulumi %s %s in %d s\n' "$version" "$result" $((SECONDS - t0)) >&2

# shellcheck source=scripts/engine-env.sh
. "$repo_root/scripts/engine-env.sh"
"$repo_root/scripts/install-plugins.sh"
echo "$bin_dir"
