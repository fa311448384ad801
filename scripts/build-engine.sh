#!/usr/bin/env bash
# Build the Pulumi engine binaries this lab needs from the Go module proxy.
#
# Every binary has a small wrapper module under engine/<name>/ (go.mod + go.sum
# pin the exact versions).
#
# pulumi-resource-libvirt and pulumi-resource-command are NOT the registry's
# plugins: the Go module proxy refuses pulumi-libvirt, pulumi-command and the
# Terraform provider they wrap (403), so engine/provider-libvirt and
# engine/provider-command are small stand-ins of our own that implement just the
# resource API the lab program uses (see engine/README.md); the code they share
# is the local module engine/providerkit (a `replace` line in their go.mod),
# which their build stamps cover too. Machines that can download the registry
# plugins should use those instead. Binaries go to a cache folder keyed by name and
# version, and bin/ in that cache holds symlinks to the current ones, so
#   export PATH="$(scripts/build-engine.sh --print-bin-dir):$PATH"
# (or `. scripts/engine-env.sh`) is all a caller needs. Go's module and build
# caches live under the same cache root: a rerun, also from a fresh clone in
# another folder, only checks stamps and takes seconds.
#
# Usage: scripts/build-engine.sh [--only NAME]... [--print-bin-dir] [--list]
#   --only NAME      build only this component (repeatable); see --list
#   --print-bin-dir  print the bin folder and exit (builds nothing)
#   --list           print the known components and exit
# Environment: HA_WEB_LAB_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
engine_src="$repo_root/engine"
cache_root="${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}"
engine_cache="$cache_root/engine"
bin_dir="$engine_cache/bin"

# Components, in build order. Per component: the binary it makes, the Go
# package to build (relative to its wrapper module), the module whose version
# names the build (or a fixed version), the variable that gets that version,
# and build tags.
components=(pulumi language-python provider-libvirt provider-command)

component_info() {
  # Sets: binary pkg version_module version_var tags fixed_version
  tags=""
  fixed_version=""
  case "$1" in
    pulumi)
      binary=pulumi
      pkg=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
      version_module=github.com/pulumi/pulumi/pkg/v3
      version_var=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
      tags=osusergo,grpcnotrace
      ;;
    language-python)
      # Our own minimal host (engine/language-python/main.go): the upstream
      # host module is not served by the Go module proxy.
      binary=pulumi-language-python
      pkg=.
      version_module=github.com/pulumi/pulumi/sdk/v3
      version_var=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
      ;;
    provider-libvirt | provider-command)
      # Our own stand-ins for the registry plugins the proxy refuses. They carry
      # the version of the registry release whose API they mirror (the version
      # the Python SDKs in the venv ask for), set as a constant in main.go.
      binary=pulumi-resource-${1#provider-}
      pkg=.
      version_module=""
      version_var=""
      if [[ $1 == provider-libvirt ]]; then fixed_version=v0.5.4; else fixed_version=v1.2.1; fi
      ;;
    *)
      return 1
      ;;
  esac
}

die() {
  echo "build-engine: error: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

only=()
while (($#)); do
  case "$1" in
    --only)
      (($# >= 2)) || die "--only needs a component name (one of: ${components[*]})"
      component_info "$2" || die "unknown component '$2' (known: ${components[*]})"
      only+=("$2")
      shift 2
      ;;
    --only=*)
      component_info "${1#--only=}" || die "unknown component '${1#--only=}' (known: ${components[*]})"
      only+=("${1#--only=}")
      shift
      ;;
    --print-bin-dir)
      echo "$bin_dir"
      exit 0
      ;;
    --list)
      printf '%s\n' "${components[@]}"
      exit 0
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      die "unknown argument '$1' (try --help)"
      ;;
  esac
done
if ((${#only[@]} == 0)); then
  only=("${components[@]}")
fi

command -v go >/dev/null 2>&1 || die "go not found on PATH (Go 1.26 is needed)"

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

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

table=()
record() { table+=("$(printf '%-34s %8s  %s' "$1" "$2" "$3")"); }

print_table() {
  echo
  printf '%-34s %8s  %s\n' "step" "seconds" "result"
  printf '%-34s %8s  %s\n' "----" "-------" "------"
  local row
  for row in "${table[@]}"; do
    echo "$row"
  done
}

current_step=""
on_exit() {
  local rc=$?
  if ((rc != 0)); then
    if [[ -n "$current_step" ]]; then
      record "$current_step" "-" "FAILED"
    fi
    ((${#table[@]} == 0)) || print_table >&2
    local where=""
    [[ -z "$current_step" ]] || where=" in step \"$current_step\""
    echo "build-engine: FAILED$where (exit $rc); see the output above" >&2
  fi
}
trap on_exit EXIT

# Link name -> target in bin/, replacing an older link.
link_bin() {
  ln -sfn "$2" "$bin_dir/$1.tmp"
  mv -Tf "$bin_dir/$1.tmp" "$bin_dir/$1"
}

# What a build reads from a module folder: go.mod, go.sum (when there is one)
# and the .go files other than tests, in subfolders too.
module_sources() {
  cat "$1"/go.mod
  [[ ! -f "$1"/go.sum ]] || cat "$1"/go.sum
  find "$1" -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 -r cat
}

# The local modules a wrapper's go.mod points a requirement at
# (`replace M => ../dir`), one path a line as written there: Go wants such a
# path to start with ./, ../ or /, which no module path does. Only the
# wrapper's own replace lines count (Go ignores a dependency's).
local_replaces() {
  (cd "$1" && go mod edit -json) |
    sed -n 's/^[[:space:]]*"Path": "\(\.\{0,2\}\/[^"]*\)",\{0,1\}$/\1/p'
}

# Stamp: what the binary was built from. A changed wrapper, Go version or
# flag set rebuilds even when the version (the folder name) stays the same;
# so does a change in a local module the wrapper replaces a requirement with
# (engine/providerkit, shared by the stand-in providers), stamped under the
# path its go.mod names, so the stamp is the same in any clone.
stamp_of() {
  local mod_dir=$1 replaces rel
  local -a rels=()
  replaces=$(local_replaces "$mod_dir") || die "cannot read the replace lines of $mod_dir/go.mod"
  [[ -z "$replaces" ]] || mapfile -t rels <<<"$replaces"
  for rel in "${rels[@]}"; do
    (cd "$mod_dir" && [[ -f "$rel/go.mod" ]]) || die "$mod_dir/go.mod replaces a module with $rel, which has no go.mod"
  done
  {
    echo "go=$go_version tags=$tags var=$version_var pkg=$pkg"
    module_sources "$mod_dir"
    for rel in "${rels[@]}"; do
      echo "replace=$rel"
      (cd "$mod_dir" && module_sources "$rel")
    done
  } | sha256sum | cut -d' ' -f1
}

build_component() {
  local name=$1 mod_dir="$engine_src/$1"
  local binary pkg version_module version_var tags fixed_version version out stamp t0 t1
  component_info "$name"
  [[ -f "$mod_dir/go.mod" && -f "$mod_dir/go.sum" ]] || die "missing $mod_dir/go.mod or go.sum"

  current_step="$name: resolve version"
  t0=$(now)
  if [[ -n "$fixed_version" ]]; then
    version=$fixed_version
  else
    # Reads go.mod/go.sum only; downloads at most the .mod files on a cold cache.
    version=$(cd "$mod_dir" && go list -m -f '{{.Version}}' "$version_module") ||
      die "cannot resolve $version_module in $mod_dir/go.mod"
    [[ -n "$version" ]] || die "empty version for $version_module in $mod_dir"
  fi
  out="$engine_cache/$name-$version"
  stamp=$(stamp_of "$mod_dir")

  current_step="$name $version"
  if [[ -x "$out/$binary" && -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]]; then
    t1=$(now)
    record "$current_step" "$(elapsed "$t0" "$t1")" cached
  else
    echo "build-engine: building $binary $version (module $mod_dir)" >&2
    mkdir -p "$out"
    rm -f "$out/.stamp"
    (
      cd "$mod_dir"
      go build -trimpath ${tags:+-tags "$tags"} \
        -ldflags "-s -w${version_var:+ -X $version_var=$version}" \
        -o "$out/$binary.tmp" "$pkg"
    ) || die "go build of $pkg failed (component $name, $version)"
    mv -f "$out/$binary.tmp" "$out/$binary"
    echo "$stamp" >"$out/.stamp"
    t1=$(now)
    record "$current_step" "$(elapsed "$t0" "$t1")" built
  fi
  link_bin "$binary" "$out/$binary"

  if [[ "$name" == language-python ]]; then
    install_python_scripts "$mod_dir" "$out" "$version"
  fi
  current_step=""
}

# The exec script the language host runs (it must sit next to the host binary)
# and the dynamic-provider plugin script both ship in the sdk/v3 module.
install_python_scripts() {
  local mod_dir=$1 out=$2 version=$3 sdk_dir t0 t1 f src
  current_step="language-python: exec scripts"
  t0=$(now)
  sdk_dir=$(cd "$mod_dir" && go mod download -json github.com/pulumi/pulumi/sdk/v3 |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -n "$sdk_dir" && -d "$sdk_dir" ]] || die "sdk/v3 module download not found"
  local status=cached
  for f in python/cmd/pulumi-language-python-exec python/dist/pulumi-resource-pulumi-python; do
    src="$sdk_dir/$f"
    [[ -f "$src" ]] || die "$f not found in the sdk/v3 $version module download ($sdk_dir)"
    if ! cmp -s "$src" "$out/${f##*/}"; then
      install -m 0755 "$src" "$out/${f##*/}"
      status=installed
    fi
    link_bin "${f##*/}" "$out/${f##*/}"
  done
  t1=$(now)
  record "$current_step" "$(elapsed "$t0" "$t1")" "$status"
}

total0=$(now)
for name in "${only[@]}"; do
  build_component "$name"
done
total1=$(now)
record "total" "$(elapsed "$total0" "$total1")" ""

# Drop links whose target is gone (e.g. a component renamed or removed).
find "$bin_dir" -maxdepth 1 -xtype l -delete

print_table
echo
echo "$bin_dir"
