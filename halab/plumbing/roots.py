"""The project's name and the two folders named after it: its cache and its state.

Computed as ``scripts/bootstrap.sh`` computes them, since the scripts run before Python may.
"""

import os
from pathlib import Path

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
