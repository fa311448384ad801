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

[[ $EUID -eq 0 ]] || { say "run as root (the project's libvirtd runs as root)"; exit 1; }
[[ -x venv/bin/python ]] || { say "no venv: run scripts/bootstrap.sh (make bootstrap) first"; exit 1; }
export PATH=$PATH:/usr/sbin:/sbin

scripts/build-engine.sh >/dev/null
# shellcheck source=scripts/engine-env.sh
source scripts/engine-env.sh
mapfile -t image < <(venv/bin/python -m halab image)
((${#image[@]} == 3)) || { say "python -m halab image printed no disk/kernel/initrd paths"; exit 1; }

libvirtd() { venv/bin/python -m halab libvirtd "$@"; }
ours=0
if libvirtd status >/dev/null 2>&1; then
  say "the project's libvirtd already runs: using it (and leaving it running)"
  uri=$(libvirtd uri)
else
  ours=1
  # It fails when anything it made (the namespace) is still there.
  stop() { libvirtd stop || { say "the project's libvirtd did not stop cleanly"; return 1; }; }
  trap stop EXIT
  uri=$(libvirtd start)
fi
[[ $uri == qemu:* ]] || { say "no libvirt URI from python -m halab libvirtd"; exit 1; }

# Not through the function: $! must be the run's own PID (exec keeps it through ip and env).
venv/bin/python -m halab libvirtd exec env PYTHONPATH="$ROOT" venv/bin/python -m halab.e2e run \
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
  stop || exit 1
fi
exit "$rc"
