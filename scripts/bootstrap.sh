#!/usr/bin/env bash
# Install what the lab needs on a Debian machine, idempotently:
#   scripts/bootstrap.sh host    what `make up` needs: the [host] packages of scripts/apt-packages.txt
#   scripts/bootstrap.sh tests   that, the tests' [tests] packages and sshd unpacked (`make test`)
# then the virtualenv Pulumi uses (venv/, as Pulumi.yaml says) with requirements-dev.txt.
# The Debian packages go through halab/plumbing/hostdeps.py (Debian's python3, standard library
# only): no daemon of theirs starts, and what the lab runs only in VMs and namespaces is not left
# enabled.
# A second run with everything present takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'bootstrap: %s\n' "$*" >&2; }
choice=${1:-host}
[[ $choice == host || $choice == tests ]] || { say "usage: $0 [host|tests]"; exit 2; }
# The project's cache root, the rule of halab.plumbing.roots.cache_root(): this runs before
# Python may exist.
HWL_CACHE=${HA_WEB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-web-lab}

sudo_cmd=()
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null || { say "run as root or install sudo"; exit 1; }
  sudo_cmd=(sudo)
fi

# The installer is Python, so a Debian without python3 (a minimal one) gets it first: it ships
# no daemon, so it needs none of the installer's care.
if ! command -v python3 >/dev/null; then
  say "installing Debian's python3 (the package installer, halab/plumbing/hostdeps.py, is Python)"
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends python3
fi
lacking=$(python3 -m halab.plumbing.hostdeps missing "$choice")
if [[ -n $lacking ]]; then
  "${sudo_cmd[@]}" python3 -m halab.plumbing.hostdeps install "$choice"
else
  say "Debian packages present ($choice)"
fi

# sshd only checks the rendered sshd drop-in (`sshd -T`, halab/render/validate.py), a test: `tests` only.
# Installing openssh-server would start an SSH server on this machine, so its sshd is unpacked
# into the cache instead (its libraries come from scripts/apt-packages.txt).
tools=$HWL_CACHE/tools
if [[ $choice == tests && ! -x /usr/sbin/sshd && ! -x $tools/openssh-server/usr/sbin/sshd ]]; then
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
