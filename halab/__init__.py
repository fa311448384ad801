"""ha-web-lab: the pure-Python heart of the lab.

The spec (``halab.spec``) is the one source of truth: it validates a stack's config and computes
every address, MAC, interface name, VRRP priority and firewall rule. The renderer
(``halab.render``) turns a spec into per-host files. Neither imports Pulumi, so the render command,
the local namespace lab and the tests use exactly what ``pulumi up`` deploys.
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
