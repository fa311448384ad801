"""ha-web-lab: the pure-Python heart of the lab, in the order the data flows.

- ``halab.spec`` and its sections (``halab.sections``): the one source of truth; it validates a
  stack's config and computes every address, MAC, interface name, VRRP priority and firewall
  rule;
- ``halab.roles``: what each kind of host is (legs, packages, files, daemons, checks);
- ``halab.render``: spec and roles -> every host's files;
- the namespace lab (``halab.lab``) and a deployed lab of VMs (``halab.e2e``), two targets of
  the drills (``halab.drills``);
- around them: ``make up``/``make down`` (``halab.up``), the Pulumi engine and the environment
  of every Pulumi run (``halab.engine``), the project's libvirtd (``halab.libvirtd``) and image
  (``halab.image``, its Debian mirror from ``halab.debian``), ``make fresh-test``
  (``halab.fresh``).

Nothing here imports Pulumi but the e2e run, so the render command, the namespace lab and the
tests use exactly what ``pulumi up`` deploys.
"""

import fcntl
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

PROJECT = "ha-web-lab"


def cache_root() -> Path:
    """The project's cache folder (engine, image, unpacked tools), computed as the scripts do."""
    explicit = os.environ.get("HA_WEB_LAB_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / PROJECT


def state_root() -> Path:
    """The project's state folder (stacks' state, their passphrase, the project's libvirtd):
    ``$HA_WEB_LAB_STATE``, else ``$XDG_STATE_HOME/ha-web-lab``, else
    ``~/.local/state/ha-web-lab``."""
    explicit = os.environ.get("HA_WEB_LAB_STATE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / PROJECT


def teller(name: str, *, to_stdout: bool = False) -> Callable[[str], None]:
    """A ``say(text)`` that prints ``NAME: text`` as one flushed line: on stderr by default, so
    stdout carries only what a command's callers read (a URI, paths, the bin folder)."""

    def say(text: str) -> None:
        print(f"{name}: {text}", file=sys.stdout if to_stdout else sys.stderr, flush=True)

    return say


def flock_within(handle: IO[Any], timeout: float) -> bool:
    """Take an exclusive lock on an open file within ``timeout`` s; False when it stays held.
    Python opens files close-on-exec, so no child ever inherits the lock."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.2) + 2):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        else:
            return True
    return False
