#!/usr/bin/env bash
# Install everything the lab and its tests need on a Debian machine, idempotently:
# Debian packages from scripts/apt-packages.txt (apt-get update only when something is missing),
# sshd unpacked (not installed) for checking the rendered SSH config, then the virtualenv Pulumi uses (venv/, as Pulumi.yaml says) with requirements-dev.txt.
# A second run with everything present takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'bootstrap: %s\n' "$*" >&2; }
# The project's cache root, the rule of halab.cache_root(): this runs before Python may exist.
HWL_CACHE=${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}

sudo_cmd=()
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null || { say "run as root or install sudo"; exit 1; }
  sudo_cmd=(sudo)
fi

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/apt-packages.txt | grep -v '^$')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages present (${#wanted[@]})"
fi

# sshd only checks the rendered sshd drop-in (`sshd -T`, halab/validate.py). Installing
# openssh-server would start an SSH server on this machine, so its sshd is unpacked into the cache
# instead (its libraries come from scripts/apt-packages.txt).
tools=$HWL_CACHE/tools
if [[ ! -x /usr/sbin/sshd && ! -x $tools/openssh-server/usr/sbin/sshd ]]; then
  say "unpacking sshd from Debian's openssh-server into $tools (not installed: no server starts)"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  # apt-get download needs package lists; a machine that had every package may have none yet.
  (cd "$scratch" && apt-get download -q openssh-server 2>/dev/null) || {
    "${sudo_cmd[@]}" apt-get update -q
    (cd "$scratch" && apt-get download -q openssh-server)
  }
  mkdir -p "$tools/openssh-server"
  dpkg-deb -x "$scratch"/openssh-server_*.deb "$tools/openssh-server"
  "$tools/openssh-server/usr/sbin/sshd" -V 2>&1 | head -n1
fi

python=${PYTHON:-python3}
if [[ ! -x venv/bin/python ]]; then
  say "creating venv/ with $($python --version)"
  "$python" -m venv venv
fi
# Reinstall only when the requirements change.
stamp=venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  say "installing Python packages (requirements-dev.txt)"
  venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
else
  say "Python packages present"
fi
