#!/usr/bin/env bash
# `make up`: from a fresh clone to a running lab. Each missing prerequisite gets one line that
# says how to fix it. LOCAL_LIBVIRTD=1 uses the project's own libvirtd (software emulation).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:-dev}

say() { printf 'ha-web-lab: %s\n' "$*"; }
die() { printf 'ha-web-lab: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/pulumi-env.sh
source scripts/pulumi-env.sh
if ! command -v pulumi >/dev/null 2>&1; then
  say "no Pulumi CLI on PATH: building it and the plugins from Go modules (cached; see README)"
  scripts/build-engine.sh
  # shellcheck source=scripts/engine-env.sh
  source scripts/engine-env.sh
fi
command -v mkisofs >/dev/null 2>&1 || command -v genisoimage >/dev/null 2>&1 ||
  die "the libvirt provider needs mkisofs for cloud-init disks: apt-get install genisoimage"

pulumi stack select --create "$stack" >/dev/null
say "stack $stack, state in $PULUMI_BACKEND_URL"

if [[ ${LOCAL_LIBVIRTD:-0} == 1 ]]; then
  uri=$(scripts/libvirtd-local.sh start | tail -n 1)
  pulumi config set libvirtUri "$uri" --stack "$stack"
  pulumi config set domainType qemu --stack "$stack"
fi
uri=$(pulumi config get libvirtUri --stack "$stack" 2>/dev/null || echo "qemu:///system")
if command -v virsh >/dev/null 2>&1; then
  virsh -c "$uri" version >/dev/null 2>&1 ||
    die "no libvirtd answers at $uri: start it (systemctl start libvirtd), set another with 'pulumi config set libvirtUri URI', or run 'LOCAL_LIBVIRTD=1 make up' for the project's own"
else
  say "virsh not found (apt-get install libvirt-clients): skipping the libvirtd check"
fi
image=$(pulumi config get baseImage --stack "$stack" 2>/dev/null || true)
if [[ -n $image && $image != *://* && ! -f $image ]]; then
  die "base image $image does not exist: download a cloud image or run scripts/build-image.sh, then 'pulumi config set baseImage PATH'"
fi

# The readiness gates log in over SSH: use the user's key, or make one for the lab.
if ! pulumi config get sshPublicKeys --stack "$stack" 2>/dev/null | grep -q ssh-; then
  key=${HA_WEB_LAB_SSH_KEY:-$HOME/.ssh/id_ed25519}
  if [[ ! -f $key ]]; then
    say "making an SSH key for the lab: $key"
    mkdir -p "$(dirname "$key")" && ssh-keygen -q -t ed25519 -N '' -f "$key"
  fi
  pulumi config set --path 'sshPublicKeys[0]' "$(cat "$key.pub")" --stack "$stack"
  pulumi config set --secret sshPrivateKey --stack "$stack" < "$key"
fi

args=(up --stack "$stack")
[[ -t 0 ]] || args+=(--yes)
pulumi "${args[@]}"
say "done: 'pulumi stack output --stack $stack' shows the URL and SSH commands; 'make destroy STACK=$stack' removes it all"
