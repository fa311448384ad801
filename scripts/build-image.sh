#!/usr/bin/env bash
# Build the Debian bookworm image of the lab VMs, from Debian's packages only, and cache it.
#
#   scripts/build-image.sh               build if needed, then print the three paths
#   scripts/build-image.sh --print-paths print the paths of the cached image (exit 1 if not built)
#   scripts/build-image.sh --force       rebuild even if cached
#
# Output (stdout, one a line, in this order): disk.qcow2, vmlinuz, initrd.img, in
#   ${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}/image/<key>/
# where <key> hashes the script version, the suite, the package list and the disk size, so a
# rerun with nothing changed is instant. Progress goes to stderr.
#
# How: mmdebstrap (minbase + the packages below) into a folder, a few files written into it,
# `mkfs.ext4 -d` into a sparse raw file (no loop mount), `qemu-img convert -O qcow2`; the kernel
# and initrd are copied out for direct kernel boot (cmdline: root=/dev/vda rw console=ttyS0
# net.ifnames=0). The root filesystem is the whole /dev/vda (no partition table).
# In the image: cloud-init with the NoCloud datasource and the ENI renderer (ifupdown,
# /etc/network/interfaces sources interfaces.d), ssh enabled without host keys (cloud-init makes
# them per VM), nginx/haproxy/keepalived disabled (the first-boot setup script enables them),
# C.UTF-8 as the locale, apt timers and e2scrub off, ed25519/ECDSA host keys only (RSA keygen
# takes seconds under TCG), no grub-dpkg, sshd without password logins from its first start.
# Kernel modules for graphics, media, sound, wireless, physical NICs and InfiniBand are left out,
# nested KVM and the PC speaker are not loaded: the image is for virtio guests only.
#
# Needs (Debian packages): mmdebstrap, e2fsprogs, qemu-utils, coreutils, util-linux (flock),
# and a Debian mirror: the one this machine's apt uses for bookworm and bookworm-security, or
# HA_WEB_LAB_DEBIAN_MIRROR and HA_WEB_LAB_DEBIAN_SECURITY_MIRROR.
# Runs as root (mmdebstrap's root mode makes a tree with the right owners).
set -euo pipefail

# Bump when anything this script puts into the image changes: it is part of the cache key.
# net-tools: cloud-init's ENI renderer turns network-config routes into `route add ...`.
# 4: PasswordAuthentication no from the start (no sshd restart by cloud-init), no nested KVM
# or PC speaker modules.
SCRIPT_VERSION=4
SUITE=bookworm
# The system the VMs boot into; the roles' own packages come from halab/roles.py, the one list.
PACKAGES=(
    linux-image-amd64 initramfs-tools udev dbus kmod systemd-sysv procps e2fsprogs
    cloud-init ifupdown iproute2 net-tools netbase iputils-ping
    openssh-server openssh-sftp-server sudo curl ca-certificates
)
DISK_SIZE=${HA_WEB_LAB_IMAGE_SIZE:-4G}

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

mapfile -t role_packages < <(cd "$(dirname "$0")/.." && python3 -m halab.roles packages)
((${#role_packages[@]})) || die "python3 -m halab.roles packages listed no package"
PACKAGES+=("${role_packages[@]}")

mode=build
case ${1:-} in
    "") ;;
    --print-paths) mode=print ;;
    --force) mode=force ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (use --print-paths, --force or nothing)" ;;
esac

cache=$HWL_CACHE/image
key=$(printf '%s\n' "version=$SCRIPT_VERSION" "suite=$SUITE" "size=$DISK_SIZE" \
    "$(printf '%s\n' "${PACKAGES[@]}" | LC_ALL=C sort -u)" | sha256sum | cut -c1-16)
out=$cache/$key

print_paths() {
    printf '%s\n' "$out/disk.qcow2" "$out/vmlinuz" "$out/initrd.img"
}
built() { [[ -s $out/disk.qcow2 && -s $out/vmlinuz && -s $out/initrd.img && -f $out/.complete ]]; }

if [[ $mode == print ]]; then
    built || die "no image for key $key in $cache: run scripts/build-image.sh"
    print_paths
    exit 0
fi
if [[ $mode == build ]] && built; then
    say "cached: $out"
    print_paths
    exit 0
fi

[[ $EUID -eq 0 ]] || die "run as root (mmdebstrap's root mode keeps file owners)"
need() { command -v "$1" >/dev/null 2>&1 || die "missing $1: apt-get install $2"; }
need mmdebstrap mmdebstrap
need mkfs.ext4 e2fsprogs
need e2fsck e2fsprogs
need qemu-img qemu-utils
need flock util-linux

mkdir -p "$cache"
exec 9>"$cache/.lock-$key"
flock -w 1800 9 || die "another build of $key holds $cache/.lock-$key"
if [[ $mode == build ]] && built; then # built by the holder of the lock meanwhile
    say "cached: $out"
    print_paths
    exit 0
fi

work=$(mktemp -d "$cache/.build-$key.XXXXXX")
bg_pid=
cleanup() {
    if [[ -n $bg_pid ]] && kill -0 "$bg_pid" 2>/dev/null; then
        kill -TERM "$bg_pid" 2>/dev/null || true
        wait "$bg_pid" 2>/dev/null || true
    fi
    if [[ -n $work ]]; then rm -rf --one-file-system "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a long step in the background and wait, so that a TERM reaches the cleanup at once.
run() {
    "$@" &
    bg_pid=$!
    wait "$bg_pid"
    bg_pid=
}

mirror_of() { "$(dirname "${BASH_SOURCE[0]}")/debian-mirror.sh" "$1"; }
MIRROR=${HA_WEB_LAB_DEBIAN_MIRROR:-$(mirror_of "$SUITE")}
SECURITY_MIRROR=${HA_WEB_LAB_DEBIAN_SECURITY_MIRROR:-$(mirror_of "$SUITE-security")}
[[ -n $MIRROR ]] || die "no apt source for $SUITE on this machine: set HA_WEB_LAB_DEBIAN_MIRROR"
[[ -n $SECURITY_MIRROR ]] || die "no apt source for $SUITE-security on this machine: set HA_WEB_LAB_DEBIAN_SECURITY_MIRROR"

t0=$SECONDS
root=$work/root
mkdir "$root"
include=$(IFS=,; echo "${PACKAGES[*]}")
# Kernel modules a virtio guest never loads (about half of linux-image's 400 MB): graphics,
# media, sound, wireless, physical NICs (the lab's NICs are virtio-net), InfiniBand, sensors.
module_excludes=()
for dir in drivers/gpu drivers/media drivers/net/wireless drivers/net/ethernet drivers/infiniband \
    drivers/iio drivers/staging drivers/isdn drivers/bluetooth net/wireless net/bluetooth sound; do
    module_excludes+=("--dpkgopt=path-exclude=/lib/modules/*/kernel/$dir/*")
done
say "mmdebstrap $SUITE (${#PACKAGES[@]} packages) from $MIRROR into $root"
run mmdebstrap --mode=root --variant=minbase --components=main \
    --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "${module_excludes[@]}" \
    "$SUITE" "$root" \
    "deb $MIRROR $SUITE main" \
    "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" \
    </dev/null >&2
t_debootstrap=$((SECONDS - t0))

say "configuring the tree"
echo debian >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
printf '# ha-web-lab image: the root filesystem is the whole virtio disk\n/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' \
    >"$root/etc/fstab"
mkdir -p "$root/etc/network/interfaces.d"
cat >"$root/etc/network/interfaces" <<'EOF'
# ha-web-lab image: cloud-init (ENI renderer) writes interfaces.d/50-cloud-init.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
cat >"$root/etc/cloud/cloud.cfg.d/90_ha-web-lab.cfg" <<'EOF'
# ha-web-lab image: seeded by a NoCloud ISO (volume label cidata) only; network config is
# rendered for ifupdown; C.UTF-8 needs no locales package.
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
manage_etc_hosts: true
# Under TCG an RSA (and DSA) host key takes seconds to make: ed25519 and ECDSA only.
ssh_genkeytypes: [ ed25519, ecdsa ]
ssh:
  emit_keys_to_console: false
# No GRUB in this image (direct kernel boot).
grub_dpkg:
  enabled: false
system_info:
  network:
    renderers: [ eni ]
EOF
echo 'LANG=C.UTF-8' >"$root/etc/default/locale"
# Keys only from the first sshd start. The file is the one cloud-init's set-passwords module
# edits for `ssh_pwauth: false`: finding the setting already there, it does not restart sshd
# (a restart took ~2 s of an emulated guest's first boot, mid-way through the readiness gate's
# SSH session). The role's sshd drop-in (60-ha-web-lab.conf) says the same later.
printf '%s\n' 'PasswordAuthentication no' >"$root/etc/ssh/sshd_config.d/50-cloud-init.conf"
chmod 600 "$root/etc/ssh/sshd_config.d/50-cloud-init.conf"
# Modules for hardware a lab guest has no use for, which udev would load at every boot while
# cloud-init starts: nested KVM (QEMU's default CPU model advertises SVM), the PC speaker.
cat >"$root/etc/modprobe.d/ha-web-lab.conf" <<'EOF'
# ha-web-lab image: not loaded at boot (no nested VMs, no speaker in a lab guest).
blacklist kvm_amd
blacklist kvm_intel
blacklist kvm
blacklist ccp
blacklist pcspkr
EOF
# Per-VM identities: made on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
# Services: ssh on; the role services start only once the setup script has configured them.
systemctl --root="$root" enable ssh.service >/dev/null 2>&1
systemctl --root="$root" disable nginx.service haproxy.service keepalived.service >/dev/null 2>&1
systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer man-db.timer; do
    if [[ -e $root/lib/systemd/system/$unit ]]; then
        systemctl --root="$root" disable "$unit" >/dev/null 2>&1
    fi
done
rm -f "$root"/etc/nginx/sites-enabled/default

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
[[ -n $kernel && -n $initrd ]] || die "no kernel or initrd in $root/boot"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package}\t${Version}\n' >"$work/packages.tsv"

say "ext4 ($DISK_SIZE, sparse) from the tree, then qcow2"
truncate -s "$DISK_SIZE" "$work/root.raw"
run mkfs.ext4 -q -F -L hwl-root -E root_owner=0:0 -d "$root" "$work/root.raw"
run e2fsck -fn "$work/root.raw" >/dev/null
run qemu-img convert -f raw -O qcow2 "$work/root.raw" "$work/disk.qcow2"
rm -f "$work/root.raw"
rm -rf --one-file-system "$root"

{
    echo "key=$key"
    echo "script_version=$SCRIPT_VERSION"
    echo "suite=$SUITE"
    echo "size=$DISK_SIZE"
    echo "kernel=${kernel##*/}"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "mmdebstrap_seconds=$t_debootstrap"
    echo "total_seconds=$((SECONDS - t0))"
} >"$work/build-info"
touch "$work/.complete"
rm -rf "$out"
mv "$work" "$out"
work= # nothing left to clean up
# Older builds (another script version or package list) are of no more use: the lab copies the
# image into a libvirt pool. HA_WEB_LAB_IMAGE_KEEP_OLD=1 keeps them.
if [[ ${HA_WEB_LAB_IMAGE_KEEP_OLD:-0} != 1 ]]; then
    for old in "$cache"/*/; do
        old=${old%/}
        [[ $old == "$out" || ! -f $old/.complete ]] && continue
        say "removing the older image ${old##*/}"
        rm -rf --one-file-system "$old"
        rm -f "$cache/.lock-${old##*/}"
    done
fi
say "built in $((SECONDS - t0)) s (mmdebstrap $t_debootstrap s): $(du -sh "$out/disk.qcow2" | cut -f1) qcow2"
print_paths
