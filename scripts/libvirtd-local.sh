#!/usr/bin/env bash
# A private libvirtd for ha-web-lab, without systemd, in a network namespace of its own.
#
#   scripts/libvirtd-local.sh start        start it (idempotent), wait until it answers, print the URI
#   scripts/libvirtd-local.sh stop         stop guests, networks and daemons; remove the namespace
#   scripts/libvirtd-local.sh status       say whether it runs (exit 0) or not (exit 3)
#   scripts/libvirtd-local.sh env          print export lines (LIBVIRT_DEFAULT_URI, the namespace)
#   scripts/libvirtd-local.sh uri          print the URI
#   scripts/libvirtd-local.sh exec CMD...  run CMD inside the namespace, where the VMs' bridges are
#
# Clients (virsh, Pulumi's libvirt provider) run in the root network namespace and connect with
#   qemu:///system?socket=<state>/libvirtd/run/libvirt-sock
# Anything that must reach the VMs (ssh, curl) has to run through `exec`.
#
# How: `ip netns add` a namespace (HA_WEB_LAB_LIBVIRT_NETNS, default hwl-libvirt); in it, in a
# private mount namespace: a tmpfs on /run, and folders of ours bind-mounted over /run/libvirt,
# /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt (a root libvirtd reads
# /etc/libvirt/qemu.conf and keeps every definition under /etc/libvirt: no env var or flag moves
# them), and an empty file bind-mounted read-only over /dev/kvm (the real one is root-only and
# unusable here: libvirt would probe it, find it unusable and hang or re-probe QEMU on every
# call; guests run under TCG, domain type 'qemu'); then virtlogd and libvirtd with our own
# config files (scripts/libvirt/*.conf.in). The host's /etc/libvirt, /run and /dev/kvm are not
# touched. State: ${HA_WEB_LAB_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/ha-web-lab}/libvirtd,
# kept across stop/start (definitions, pools, logs, QEMU capability cache). `stop` is like a
# host shutdown: running guests are destroyed and active networks stopped, their definitions
# stay (autostart networks come back on the next start); it empties only its run/ folder.
#
# Debian packages (installed by scripts/bootstrap.sh, not here), --no-install-recommends:
#   libvirt-daemon-system libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
#   qemu-system-x86 qemu-utils dnsmasq-base iptables iproute2 util-linux
# Runs as root.
set -euo pipefail

NS=${HA_WEB_LAB_LIBVIRT_NETNS:-hwl-libvirt}
STATE=${HA_WEB_LAB_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/ha-web-lab}
BASE=$STATE/libvirtd
START_TIMEOUT=${HA_WEB_LAB_LIBVIRTD_START_TIMEOUT:-90}
STOP_TIMEOUT=15
SELF=$(readlink -f "${BASH_SOURCE[0]}")
TEMPLATES=$(dirname "$SELF")/libvirt

ETC=$BASE/etc
RUN=$BASE/run
LIB=$BASE/lib
CACHE=$BASE/cache
LOG=$BASE/log
SOCK=$RUN/libvirt-sock
URI="qemu:///system?socket=$SOCK"
LIBVIRTD_PID=$BASE/libvirtd.pid
VIRTLOGD_PID=$BASE/virtlogd.pid
KVM_BLOCKER=$BASE/kvm-blocker
NS_MARK=$BASE/netns # names the namespace while this script owns it

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() { sed -n '2,9p' "$SELF" >&2; exit 2; }

check_paths() {
    # The path goes into a URI and into config files: keep it plain; unix sockets have 108 bytes.
    [[ $BASE =~ ^/[A-Za-z0-9._/-]+$ ]] ||
        die "state folder '$BASE' must be an absolute path of letters, digits and ._/- only (set HA_WEB_LAB_STATE)"
    ((${#RUN} + 20 < 108)) || die "state folder '$BASE' is too long for a unix socket path (set HA_WEB_LAB_STATE)"
    [[ $NS =~ ^[A-Za-z0-9_.-]{1,32}$ ]] || die "bad namespace name '$NS'"
}

check_packages() {
    [[ $EUID -eq 0 ]] || die "run as root (a root libvirtd with its own network namespace)"
    local spec cmd pkg
    for spec in libvirtd:libvirt-daemon virtlogd:libvirt-daemon virsh:libvirt-clients \
        qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils dnsmasq:dnsmasq-base \
        iptables:iptables ip:iproute2 unshare:util-linux flock:util-linux; do
        cmd=${spec%%:*} pkg=${spec#*:}
        PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 ||
            die "missing Debian package $pkg (no $cmd): apt-get install --no-install-recommends $pkg"
    done
    [[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ||
        -n $(find /usr/lib -path '*libvirt/connection-driver/libvirt_driver_qemu.so' -print -quit 2>/dev/null) ]] ||
        die "missing Debian package libvirt-daemon-driver-qemu: apt-get install --no-install-recommends libvirt-daemon-driver-qemu"
    # The mount points for our folders.
    local d
    for d in /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
        [[ -d $d ]] || die "missing Debian package libvirt-daemon-system (no $d): apt-get install --no-install-recommends libvirt-daemon-system"
    done
}

export PATH=$PATH:/usr/sbin:/sbin

# --- processes ------------------------------------------------------------------------------

netns_exists() { [[ -e /run/netns/$NS ]]; }
netns_ours() { netns_exists && [[ -f $NS_MARK && $(cat "$NS_MARK") == "$NS" ]]; }

# pid_is PID EXE-GLOB: PID is alive (not a zombie), runs a binary whose name matches the glob
# and, while our namespace exists, lives in it. Guards against killing a reused PID.
pid_is() {
    local pid=$1 want=$2 stat state exe
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    [[ $state != Z && $state != X ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    # shellcheck disable=SC2053 # $want is a glob on purpose
    [[ ${exe##*/} == $want ]] || return 1
    if netns_exists; then
        [[ $(stat -Lc %i "/proc/$pid/ns/net" 2>/dev/null) == "$(stat -Lc %i "/run/netns/$NS")" ]] || return 1
    fi
}

pidfile_pid() { [[ -s $1 ]] && tr -dc 0-9 <"$1"; }

running() {
    local pid
    pid=$(pidfile_pid "$LIBVIRTD_PID") || return 1
    pid_is "$pid" libvirtd
}

alive() {
    local pid=$1 stat state
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    [[ $state != Z && $state != X ]]
}

# kill_wait PID...: TERM, wait up to STOP_TIMEOUT s, then KILL and wait 5 s more.
kill_wait() {
    (($#)) || return 0
    local pid left deadline
    kill -TERM "$@" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while :; do
        left=()
        for pid in "$@"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]})) || return 0
        ((SECONDS < deadline)) || break
        sleep 0.2
    done
    say "still running after ${STOP_TIMEOUT}s, sending KILL: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    for pid in "${left[@]}"; do
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
        alive "$pid" && say "PID $pid did not end"
    done
    return 0
}

virsh_q() { timeout 30 virsh -q -c "$URI" "$@" </dev/null; }

# --- start ----------------------------------------------------------------------------------

render() {
    local template=$1 target=$2
    sed -e "s|@RUN_DIR@|$RUN|g" -e "s|@LOG_DIR@|$LOG|g" -e "s|@BASE@|$BASE|g" \
        "$TEMPLATES/$template" >"$target.tmp"
    mv "$target.tmp" "$target"
}

# Runs as `ip netns exec NS unshare --mount --propagation private SELF __daemons`: in the new
# mount namespace, put our folders in place of libvirt's and start both daemons there; they
# keep that namespace (and qemu and dnsmasq, their children, too) after this shell exits.
daemons() {
    [[ ${HWL_LIBVIRTD_LOCAL_INNER:-} == 1 ]] || die "__daemons is internal: use start"
    mount -t tmpfs -o mode=0755,size=16m hwl-run /run # so /run/libvirt can exist only here
    mkdir -p /run/libvirt /run/lock
    mount --bind "$RUN" /run/libvirt
    mount --bind "$ETC" /etc/libvirt
    mount --bind "$LIB" /var/lib/libvirt
    mount --bind "$CACHE" /var/cache/libvirt
    mount --bind "$LOG" /var/log/libvirt
    # HA_WEB_LAB_KVM=1 (make up sets it when a tiny guest ran on KVM, halab/kvm.py): leave
    # /dev/kvm as it is, for domainType kvm. Otherwise hide it:
    if [[ -e /dev/kvm && ${HA_WEB_LAB_KVM:-0} != 1 ]]; then
        # Read-only, so that access(W_OK) fails even for root (EROFS): libvirt then takes KVM as
        # unusable and keeps its TCG-only QEMU capabilities cached, instead of re-probing QEMU
        # (2-4 s) on every capability lookup, i.e. on every define and start.
        mount --bind "$KVM_BLOCKER" /dev/kvm
        mount -o remount,bind,ro /dev/kvm
    fi
    virtlogd -d -f "$ETC/virtlogd.conf" -p "$VIRTLOGD_PID"
    libvirtd -d -f "$ETC/libvirtd.conf" -p "$LIBVIRTD_PID"
}

start() {
    check_paths
    check_packages
    mkdir -p "$BASE"
    exec 9>"$BASE/lock"
    flock -w 120 9 || die "another start/stop holds $BASE/lock"
    if running; then
        if virsh_q version >/dev/null 2>&1; then
            say "already running (PID $(pidfile_pid "$LIBVIRTD_PID"), namespace $NS)"
            echo "$URI"
            return 0
        fi
        say "libvirtd runs but does not answer: restarting it"
    fi
    if netns_exists && ! netns_ours; then
        die "network namespace $NS exists but was not made by this script (state $BASE): remove it or set HA_WEB_LAB_LIBVIRT_NETNS"
    fi
    if netns_exists || [[ -e $LIBVIRTD_PID || -e $VIRTLOGD_PID ]]; then
        say "cleaning up what a previous run left"
        cleanup
    fi
    local t0=$SECONDS
    (
        umask 077
        mkdir -p "$ETC" "$RUN" "$LIB" "$CACHE" "$LOG"
    )
    chmod 0700 "$BASE"
    render libvirtd.conf.in "$ETC/libvirtd.conf"
    render qemu.conf.in "$ETC/qemu.conf"
    render virtlogd.conf.in "$ETC/virtlogd.conf"
    # Made once and kept: libvirt re-probes QEMU (4 s) whenever the /dev/kvm it sees changes.
    if [[ ! -f $KVM_BLOCKER || -s $KVM_BLOCKER ]]; then install -m 0600 /dev/null "$KVM_BLOCKER"; fi
    rm -f "$LIBVIRTD_PID" "$VIRTLOGD_PID"

    ip netns add "$NS"
    echo "$NS" >"$NS_MARK"
    ip -n "$NS" link set lo up
    if ! HWL_LIBVIRTD_LOCAL_INNER=1 ip netns exec "$NS" unshare --mount --propagation private -- "$SELF" __daemons \
        </dev/null >>"$LOG/startup.log" 2>&1 9>&-; then
        tail -n 5 "$LOG/startup.log" >&2 || true
        cleanup
        die "the daemons did not start (log: $LOG/startup.log)"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until virsh_q version >/dev/null 2>&1; do
        if ! running || ((SECONDS >= deadline)); then
            tail -n 20 "$LOG/libvirtd.log" >&2 2>/dev/null || true
            cleanup
            die "libvirtd did not answer within ${START_TIMEOUT}s (log: $LOG/libvirtd.log)"
        fi
        sleep 0.5
    done
    say "started in $((SECONDS - t0)) s: libvirtd PID $(pidfile_pid "$LIBVIRTD_PID"), namespace $NS, state $BASE"
    echo "$URI"
}

# --- stop -----------------------------------------------------------------------------------

# Stop guests and networks through libvirt (it removes taps, bridges, dnsmasq and firewall
# rules), then the daemons, then anything left: PIDs from the pid files libvirt keeps in run/,
# then any process still in our namespace (it is ours alone), then every link in it, then it.
cleanup() {
    local name pids=() pid f
    if running && virsh_q version >/dev/null 2>&1; then
        while read -r name; do
            if [[ -n $name ]] && ! virsh_q destroy "$name" >/dev/null 2>&1; then
                say "could not destroy domain $name"
            fi
        done < <(virsh_q list --name 2>/dev/null || true)
        while read -r name; do
            if [[ -n $name ]] && ! virsh_q net-destroy "$name" >/dev/null 2>&1; then
                say "could not stop network $name"
            fi
        done < <(virsh_q net-list --name 2>/dev/null || true)
    fi
    if pid=$(pidfile_pid "$LIBVIRTD_PID") && pid_is "$pid" libvirtd; then kill_wait "$pid"; fi
    if pid=$(pidfile_pid "$VIRTLOGD_PID") && pid_is "$pid" virtlogd; then kill_wait "$pid"; fi
    pids=()
    for f in "$RUN"/qemu/*.pid "$RUN"/network/*.pid "$RUN"/*.pid; do
        [[ -f $f ]] || continue
        pid=$(pidfile_pid "$f") || continue
        if pid_is "$pid" 'qemu-system-*' || pid_is "$pid" dnsmasq || pid_is "$pid" virtlogd || pid_is "$pid" libvirtd; then
            pids+=("$pid")
        fi
    done
    if ((${#pids[@]})); then
        say "ending leftover processes from pid files: ${pids[*]}"
        kill_wait "${pids[@]}"
    fi
    if netns_ours; then
        pids=()
        for pid in $(ip netns pids "$NS" 2>/dev/null); do alive "$pid" && pids+=("$pid"); done
        if ((${#pids[@]})); then
            for pid in "${pids[@]}"; do
                say "ending process left in namespace $NS: $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
            done
            kill_wait "${pids[@]}"
        fi
        while read -r name; do
            [[ -n $name && $name != lo ]] || continue
            if ip -n "$NS" link del "$name" 2>/dev/null; then say "removed link $name"; fi
        done < <(ip -n "$NS" -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
        ip netns del "$NS"
    elif netns_exists; then
        say "left network namespace $NS alone: this script did not make it"
    fi
    rm -f "$LIBVIRTD_PID" "$VIRTLOGD_PID" "$NS_MARK"
    if [[ -d $RUN ]]; then
        find "$RUN" -mindepth 1 -delete 2>/dev/null || true
    fi
}

stop() {
    check_paths
    [[ $EUID -eq 0 ]] || die "run as root"
    [[ -d $BASE ]] || { say "not running (no $BASE)"; return 0; }
    exec 9>"$BASE/lock"
    flock -w 120 9 || die "another start/stop holds $BASE/lock"
    if ! running && ! netns_ours && [[ ! -e $LIBVIRTD_PID && ! -e $VIRTLOGD_PID ]]; then
        say "not running"
        return 0
    fi
    local t0=$SECONDS
    cleanup
    say "stopped in $((SECONDS - t0)) s; namespace $NS removed"
}

status() {
    check_paths
    if running; then
        local answer
        answer=$(virsh_q version --daemon 2>/dev/null | awk '/daemon/ { print $NF }' || true)
        echo "running: libvirtd PID $(pidfile_pid "$LIBVIRTD_PID"), virtlogd PID $(pidfile_pid "$VIRTLOGD_PID" || echo '?'), namespace $NS"
        echo "uri: $URI"
        if [[ -n $answer ]]; then
            echo "answers: libvirt $answer; domains running: $(virsh_q list --name | grep -c . || true), networks active: $(virsh_q net-list --name | grep -c . || true)"
        else
            echo "answers: no"
        fi
        return 0
    fi
    echo "stopped"
    if netns_exists; then echo "namespace $NS exists (run stop to remove it)"; fi
    return 3
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env)
        check_paths
        printf "export LIBVIRT_DEFAULT_URI='%s'\n" "$URI"
        printf "export HA_WEB_LAB_LIBVIRT_NETNS='%s'\n" "$NS"
        ;;
    uri) check_paths; echo "$URI" ;;
    exec)
        shift
        (($#)) || die "exec needs a command"
        check_paths
        netns_exists || die "namespace $NS does not exist: run $0 start"
        exec ip netns exec "$NS" "$@"
        ;;
    __daemons) daemons ;;
    *) usage ;;
esac
