#!/usr/bin/env bash
# `make e2e`: the whole product on real VMs on this machine, end to end, then nothing left.
#
#   scripts/e2e.sh            engine + image (cached), the project's libvirtd, the e2e stack up
#                             (4 VMs: lb-1, lb-2, web-1, edge), the drill through the public IP,
#                             a scale-out by web-2 (preview plan checked first), destroy, checks
#
# Reports: reports/e2e/ (timings.json, the drill's JSON/PNG/text, the preview plan check).
# The checkout's stack files are never modified: the run works in a temporary copy of the
# project with a local file backend, a throwaway passphrase and a throwaway SSH key; the
# machine-specific config (libvirtUri, baseImage, kernel, initrd, storagePoolPath, SSH keys) is
# set there. Everything that must reach the VMs (pulumi with its SSH/curl gates, the drill) runs
# inside the libvirtd's network namespace. A trap destroys the stack (or, if that fails, the
# lab's own libvirt objects by name) and stops the libvirtd it started, also on failure or TERM.
# Environment: HA_WEB_LAB_E2E_KEEP=1 keeps the temporary folder (for debugging);
# HA_WEB_LAB_E2E_REPORTS=DIR writes the reports elsewhere; HA_WEB_LAB_E2E_PARALLEL_BOOT=1: see
# the experiment below.
# Runs as root (the project's libvirtd).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STACK=e2e
LAB=hwl-$STACK            # halab.spec.LabSpec.lab_name: the prefix of every libvirt object
NEW_HOST=web-2
REPORTS=${HA_WEB_LAB_E2E_REPORTS:-$ROOT/reports/e2e}
PY=$ROOT/venv/bin/python
NS=${HA_WEB_LAB_LIBVIRT_NETNS:-hwl-libvirt}
DESTROY_TIMEOUT=${HA_WEB_LAB_E2E_DESTROY_TIMEOUT:-300}

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (the project's libvirtd runs as root)"
[[ -x $PY ]] || die "no venv: run scripts/bootstrap.sh (make bootstrap) first"
for tool in virsh ip ssh-keygen genisoimage; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$tool" >/dev/null 2>&1 ||
        die "missing $tool: run scripts/bootstrap.sh"
done
export PATH=$PATH:/usr/sbin:/sbin

WORK=$(mktemp -d /tmp/hwl-e2e.XXXXXX)
PROJECT=$WORK/project
LOGS=$REPORTS/logs
mkdir -p "$REPORTS" "$LOGS"
rm -f "$REPORTS"/*.json "$REPORTS"/*.png "$REPORTS"/*.txt "$LOGS"/*.log

# --- timings ---------------------------------------------------------------------------------
T_START=$SECONDS
STEP_NAMES=()
STEP_SECS=()
STEP_RESULT=()
BG_PID=""
WATCH_PID=""
STACK_MADE=0
LIBVIRTD_OURS=0
URI=""
FAILED_STEP=""

record() { STEP_NAMES+=("$1"); STEP_SECS+=("$2"); STEP_RESULT+=("$3"); }

# run_bg NAME LOG CMD...: CMD in the background (so a TERM reaches the trap at once), waited
# for; its time recorded under NAME; output to LOG (and its tail on failure).
run_bg() {
    local name=$1 log=$2 t0=$SECONDS rc=0
    shift 2
    say "$name: $*"
    "$@" >"$log" 2>&1 &
    BG_PID=$!
    wait "$BG_PID" || rc=$?
    BG_PID=""
    if ((rc != 0)); then
        record "$name" $((SECONDS - t0)) "FAILED (exit $rc)"
        FAILED_STEP=$name
        say "$name failed (exit $rc); last lines of $log:"
        tail -n 30 "$log" >&2 || true
        return "$rc"
    fi
    record "$name" $((SECONDS - t0)) ok
    say "$name: done in $((SECONDS - t0)) s"
}

in_ns() { ip netns exec "$NS" "$@"; }
pulumi_ns() { in_ns env -C "$PROJECT" pulumi "$@"; }

# --- cleanup ---------------------------------------------------------------------------------

# Remove the lab's own libvirt objects by name (only those named $LAB...; never 'default').
scrub_libvirt() {
    local name vol
    [[ -n $URI ]] || return 0
    while read -r name; do
        [[ $name == "$LAB"-* ]] || continue
        virsh -q -c "$URI" destroy "$name" >/dev/null 2>&1 || true
        virsh -q -c "$URI" undefine "$name" >/dev/null 2>&1 && say "scrub: undefined domain $name"
    done < <(virsh -q -c "$URI" list --all --name 2>/dev/null || true)
    if virsh -q -c "$URI" pool-info "$LAB" >/dev/null 2>&1; then
        while read -r vol; do
            [[ -n $vol ]] || continue
            virsh -q -c "$URI" vol-delete "$vol" --pool "$LAB" >/dev/null 2>&1 || true
        done < <(virsh -q -c "$URI" vol-list "$LAB" 2>/dev/null | awk '{ print $1 }')
        virsh -q -c "$URI" pool-destroy "$LAB" >/dev/null 2>&1 || true
        virsh -q -c "$URI" pool-delete "$LAB" >/dev/null 2>&1 || true
        virsh -q -c "$URI" pool-undefine "$LAB" >/dev/null 2>&1 && say "scrub: removed pool $LAB"
    fi
    while read -r name; do
        [[ $name == "$LAB"-* ]] || continue
        virsh -q -c "$URI" net-destroy "$name" >/dev/null 2>&1 || true
        virsh -q -c "$URI" net-undefine "$name" >/dev/null 2>&1 && say "scrub: removed network $name"
    done < <(virsh -q -c "$URI" net-list --all --name 2>/dev/null || true)
}

# kill_tree SIGNAL PID: PID and every descendant (all started by this script), children first.
kill_tree() {
    local sig=$1 pid=$2 child
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill_tree "$sig" "$child"; done
    kill -"$sig" "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $BG_PID ]] && kill -0 "$BG_PID" 2>/dev/null; then
        say "stopping the running step (PID $BG_PID and its children)"
        kill_tree TERM "$BG_PID"
        sleep 2
        kill_tree KILL "$BG_PID"
        wait "$BG_PID" 2>/dev/null
    fi
    if [[ -n $WATCH_PID ]]; then kill "$WATCH_PID" 2>/dev/null; fi
    if ((STACK_MADE)) && [[ -n $URI ]]; then
        # A killed pulumi leaves its lock in our own throwaway state folder.
        rm -rf "$WORK/state/.pulumi/locks"
        say "cleanup: pulumi destroy of the e2e stack"
        if ! timeout "$DESTROY_TIMEOUT" ip netns exec "$NS" env -C "$PROJECT" \
            pulumi destroy --yes --skip-preview --stack "$STACK" >"$LOGS/cleanup-destroy.log" 2>&1; then
            say "cleanup: pulumi destroy failed (log $LOGS/cleanup-destroy.log): removing the lab's libvirt objects by name"
        fi
        scrub_libvirt
    fi
    if ((LIBVIRTD_OURS)); then
        scripts/libvirtd-local.sh stop || say "cleanup: libvirtd-local.sh stop failed"
    fi
    if [[ ${HA_WEB_LAB_E2E_KEEP:-0} == 1 ]]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    if ((rc != 0)); then
        say "FAILED${FAILED_STEP:+ at step \"$FAILED_STEP\"} (exit $rc) after $((SECONDS - T_START)) s; logs in $LOGS"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- 1. engine, image, libvirtd --------------------------------------------------------------
run_bg "engine (build or cache)" "$LOGS/engine.log" scripts/build-engine.sh
# shellcheck source=scripts/engine-env.sh
source scripts/engine-env.sh
command -v pulumi >/dev/null || die "no pulumi after scripts/build-engine.sh"

image_paths() { scripts/build-image.sh >"$WORK/image-paths"; }
run_bg "image (build or cache)" "$LOGS/image.log" image_paths
mapfile -t IMAGE <"$WORK/image-paths"
if ((${#IMAGE[@]} != 3)) || [[ ! -f ${IMAGE[0]} || ! -f ${IMAGE[1]} || ! -f ${IMAGE[2]} ]]; then
    die "build-image.sh printed no disk/kernel/initrd paths (log $LOGS/image.log)"
fi

if scripts/libvirtd-local.sh status >/dev/null 2>&1; then
    say "the project's libvirtd already runs: using it (and leaving it running)"
    URI=$(scripts/libvirtd-local.sh uri)
    record "libvirtd start" 0 "already running"
else
    LIBVIRTD_OURS=1
    libvirtd_start() { scripts/libvirtd-local.sh start >"$WORK/uri"; }
    run_bg "libvirtd start" "$LOGS/libvirtd.log" libvirtd_start
    URI=$(tail -n 1 "$WORK/uri")
fi
[[ $URI == qemu:* ]] || die "no libvirt URI (log $LOGS/libvirtd.log)"
if virsh -q -c "$URI" list --all --name | grep -q "^$LAB-"; then
    die "domains named $LAB-* already exist on $URI (a previous run?): remove them first"
fi

# --- 2. a temporary copy of the project --------------------------------------------------------
mkdir -p "$PROJECT" "$WORK/state"
cp Pulumi.yaml Pulumi.*.yaml __main__.py "$PROJECT/"
cp -r halab components cloud-init "$PROJECT/"
ln -s "$ROOT/venv" "$PROJECT/venv"
export PULUMI_BACKEND_URL=file://$WORK/state
PULUMI_CONFIG_PASSPHRASE=$(head -c 24 /dev/urandom | base64)
export PULUMI_CONFIG_PASSPHRASE
unset PULUMI_CONFIG_PASSPHRASE_FILE SSH_AUTH_SOCK
export PULUMI_SKIP_UPDATE_CHECK=true
ssh-keygen -q -t ed25519 -N '' -C "ha-web-lab-e2e" -f "$WORK/id_ed25519"

(
    cd "$PROJECT"
    pulumi stack init "$STACK" >/dev/null
    pulumi config set --stack "$STACK" libvirtUri "$URI"
    pulumi config set --stack "$STACK" baseImage "${IMAGE[0]}"
    pulumi config set --stack "$STACK" kernel "${IMAGE[1]}"
    pulumi config set --stack "$STACK" initrd "${IMAGE[2]}"
    pulumi config set --stack "$STACK" storagePoolPath "$WORK/pool"
    pulumi config set --stack "$STACK" --path 'sshPublicKeys[0]' "$(cat "$WORK/id_ed25519.pub")"
    pulumi config set --stack "$STACK" --secret sshPrivateKey <"$WORK/id_ed25519"
) >"$LOGS/config.log" 2>&1 || die "stack config failed (log $LOGS/config.log)"
STACK_MADE=1

# EXPERIMENT (off by default; temporary copy only): boot the LBs together with the web nodes
# instead of after the web nodes' readiness gates (components/lab.py makes the LB pair depend
# on the whole web tier, gates included, which serialises two TCG boots).
if [[ ${HA_WEB_LAB_E2E_PARALLEL_BOOT:-0} == 1 ]]; then
    sed -i 's|certificate.pem, \[self.web\], ssh)|certificate.pem, [], ssh)|' "$PROJECT/components/lab.py"
    grep -qF 'certificate.pem, [], ssh)' "$PROJECT/components/lab.py" || die "parallel boot patch did not apply"
    say "experiment: LBs boot together with the web nodes (temporary copy)"
fi

# --- 3. up: 4 VMs, every gate --------------------------------------------------------------
# Split up's time: until the last of the 4 domains runs (virsh polled each second), then the
# readiness gates (SSH to each VM, through the VIP, through the public IP).
watch_domains() {
    local want=$1 out=$2 n
    while :; do
        n=$(virsh -q -c "$URI" list --name 2>/dev/null | grep -c "^$LAB-" || true)
        if ((n >= want)); then date +%s >"$out"; return 0; fi
        sleep 1
    done
}
watch_domains 4 "$WORK/domains-up" &
WATCH_PID=$!
UP_T0=$(date +%s)
run_bg "pulumi up (4 VMs, gates passed)" "$LOGS/up.log" \
    pulumi_ns up --yes --skip-preview --stack "$STACK"
UP_T1=$(date +%s)
kill "$WATCH_PID" 2>/dev/null || true
wait "$WATCH_PID" 2>/dev/null || true
WATCH_PID=""
if [[ -s $WORK/domains-up ]]; then
    T_DOM=$(cat "$WORK/domains-up")
    record "  of which: networks, volumes, seeds, 4 domains running" $((T_DOM - UP_T0)) info
    record "  of which: ready (gates, after the last domain started)" $((UP_T1 - T_DOM)) info
fi

# --- 4. the drill through the public IP -----------------------------------------------------
# The drill reads the stack as the program does (`pulumi config --json`).
dump_config() { (cd "$PROJECT" && pulumi config --json --stack "$STACK" >"$WORK/config.json"); }
CHECK=("$PY" -m halab.e2e --project-dir "$PROJECT" check --stack "$STACK"
    --pulumi-config "$WORK/config.json" --ssh-key "$WORK/id_ed25519" --netns "$NS" --out "$REPORTS")
dump_config
run_bg "drill (round robin, virsh destroy of the master, restore)" "$LOGS/drill.log" \
    env PYTHONPATH="$ROOT" "${CHECK[@]}" --steps round-robin,lb-hard-failure,restore --seed 8

# --- 5. scale out by web-2: preview plan checked, then up ------------------------------------
t0=$SECONDS
add_host() {
    cd "$PROJECT"
    pulumi config set --stack "$STACK" --path "hosts[3].name" "$NEW_HOST"
    pulumi config set --stack "$STACK" --path "hosts[3].role" web
    pulumi config get --stack "$STACK" hosts
}
run_bg "config: add $NEW_HOST" "$LOGS/add-host.log" add_host
grep -q "$NEW_HOST" "$LOGS/add-host.log" || die "could not add $NEW_HOST (log $LOGS/add-host.log)"
preview_json() { pulumi_ns preview --json --stack "$STACK" >"$LOGS/preview.json"; }
run_bg "preview --json (+$NEW_HOST)" "$LOGS/preview.log" preview_json
run_bg "plan check" "$LOGS/plan-check.log" env PYTHONPATH="$ROOT" \
    "$PY" -m halab.e2e plan-check "$LOGS/preview.json" --new-host "$NEW_HOST" --out "$REPORTS/plan-check.json"
cat "$LOGS/plan-check.log" >&2
run_bg "pulumi up (+$NEW_HOST)" "$LOGS/up2.log" pulumi_ns up --yes --skip-preview --stack "$STACK"
dump_config
run_bg "round robin with $NEW_HOST" "$LOGS/drill2.log" \
    env PYTHONPATH="$ROOT" "${CHECK[@]}" --steps round-robin --tag scaled
record "preview + second up (total)" $((SECONDS - t0)) ok

# --- 6. destroy, and prove nothing is left ---------------------------------------------------
run_bg "pulumi destroy" "$LOGS/destroy.log" pulumi_ns destroy --yes --skip-preview --stack "$STACK"
STACK_MADE=0
LEFT=$(
    {
        virsh -q -c "$URI" list --all --name
        virsh -q -c "$URI" net-list --all --name
        virsh -q -c "$URI" pool-list --all --name
    } | grep -- "^$LAB" || true
)
VOLS=$(find "$WORK/pool" -mindepth 1 2>/dev/null | head -n 5 || true)
BRIDGES=$(ip -n "$NS" -o link show type bridge 2>/dev/null | awk -F': ' '{ print $2 }' | grep -- "^${LAB:0:11}" || true)
TAPS=$(ip -n "$NS" -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | grep -c '^vnet' || true)
if [[ -n $LEFT || -n $VOLS || -n $BRIDGES || $TAPS != 0 ]]; then
    record "nothing left" 0 "FAILED"
    FAILED_STEP="nothing left"
    die "left behind: libvirt objects [$LEFT] volumes [$VOLS] bridges [$BRIDGES] taps $TAPS"
fi
record "nothing left (virsh, bridges)" 0 ok
say "destroy check: no domain, network, pool, volume, bridge or tap of $LAB is left"

if ((LIBVIRTD_OURS)); then
    run_bg "libvirtd stop" "$LOGS/libvirtd-stop.log" scripts/libvirtd-local.sh stop
    LIBVIRTD_OURS=0
    ip netns list | grep -qw "$NS" && die "namespace $NS still exists after stop"
fi

# --- the table -------------------------------------------------------------------------------
TOTAL=$((SECONDS - T_START))
{
    printf '\n%-58s %8s  %s\n' "step" "seconds" "result"
    for i in "${!STEP_NAMES[@]}"; do
        printf '%-58s %8s  %s\n' "${STEP_NAMES[$i]}" "${STEP_SECS[$i]}" "${STEP_RESULT[$i]}"
    done
    printf '%-58s %8s\n' "total" "$TOTAL"
} | tee "$REPORTS/timings.txt"
{
    printf '{"stack": "%s", "total_s": %d, "steps": [' "$STACK" "$TOTAL"
    for i in "${!STEP_NAMES[@]}"; do
        ((i)) && printf ', '
        printf '{"step": "%s", "seconds": %s, "result": "%s"}' \
            "${STEP_NAMES[$i]}" "${STEP_SECS[$i]}" "${STEP_RESULT[$i]}"
    done
    printf ']}\n'
} >"$REPORTS/timings.json"
say "PASSED in $TOTAL s; reports in $REPORTS"
