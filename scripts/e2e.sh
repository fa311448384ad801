#!/usr/bin/env bash
# `make e2e`: the whole product on real VMs on this machine, through the registry's real plugins,
# then nothing left. This is only the entry point: it makes sure the engine and the image exist,
# starts the project's libvirtd, and runs `python -m halab.e2e run` inside the libvirtd's network
# namespace (where the VMs are reachable); halab/e2e/run.py says what the run does.
# Reports: reports/e2e/ (HA_WEB_LAB_E2E_REPORTS=DIR for another folder); HA_WEB_LAB_E2E_KEEP=1
# keeps the temporary project copy. Arguments go to the run (`scripts/e2e.sh --help`-like list:
# `venv/bin/python -m halab.e2e run --help`), e.g. `--advert-sweep 250,500` or `--skip drift`.
# Runs as root (the project's libvirtd runs as root).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$ROOT"
NS=${HA_WEB_LAB_LIBVIRT_NETNS:-hwl-libvirt}

[[ $EUID -eq 0 ]] || { say "run as root (the project's libvirtd runs as root)"; exit 1; }
[[ -x venv/bin/python ]] || { say "no venv: run scripts/bootstrap.sh (make bootstrap) first"; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin

scripts/build-engine.sh >/dev/null
# shellcheck source=scripts/engine-env.sh
source scripts/engine-env.sh
mapfile -t image < <(scripts/build-image.sh)
((${#image[@]} == 3)) || { say "scripts/build-image.sh printed no disk/kernel/initrd paths"; exit 1; }

ours=0
if scripts/libvirtd-local.sh status >/dev/null 2>&1; then
  say "the project's libvirtd already runs: using it (and leaving it running)"
  uri=$(scripts/libvirtd-local.sh uri)
else
  ours=1
  # Started in the background and waited for, so a TERM reaches the trap at once.
  stop() { scripts/libvirtd-local.sh stop || say "libvirtd-local.sh stop failed"; }
  trap stop EXIT
  uri=$(scripts/libvirtd-local.sh start | tail -n 1)
fi
[[ $uri == qemu:* ]] || { say "no libvirt URI from scripts/libvirtd-local.sh"; exit 1; }

ip netns exec "$NS" env PYTHONPATH="$ROOT" venv/bin/python -m halab.e2e run \
  --uri "$uri" --image "${image[0]}" --kernel "${image[1]}" --initrd "${image[2]}" \
  --reports "${HA_WEB_LAB_E2E_REPORTS:-$ROOT/reports/e2e}" \
  ${HA_WEB_LAB_E2E_KEEP:+--keep} "$@" &
run=$!
# A TERM or Ctrl-C goes to the run, which destroys the stack before it ends; then the trap.
trap 'kill -TERM "$run" 2>/dev/null; wait "$run"; exit 143' TERM INT
rc=0
wait "$run" || rc=$?
if ((ours && rc == 0)); then
  trap - EXIT
  stop
  if ip netns list | grep -qw "$NS"; then
    say "namespace $NS still exists after stop"
    exit 1
  fi
fi
exit "$rc"
