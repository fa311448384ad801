"""ha-web-lab: the pure-Python heart of the lab.

The spec (``halab.spec``) is the one source of truth: it validates a stack's config and computes
every address, MAC, interface name, VRRP priority and firewall rule. The renderer
(``halab.render``) turns a spec into per-host files. Neither imports Pulumi, so the render command,
the local namespace lab and the tests use exactly what ``pulumi up`` deploys.
"""

PROJECT = "ha-web-lab"
