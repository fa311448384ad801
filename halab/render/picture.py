"""A picture of the lab, drawn from the spec: zones, hosts and their addresses, VIP, edge.

Graphviz lays it out (the ``graphviz`` Python package writes the DOT text; Debian's ``graphviz``
draws it). Each zone is a network node with its CIDR, the hypervisor's address and the gateway;
each host a node with its role, linked to the zones it has a leg in, the link labelled with the
address. The VIP hangs off the DMZ with a dashed link to each LB, bold to the one that holds it
when the caller knows (a running lab), and the client comes in through the public IP to the edge.
The DOT source is written beside the SVG, so the picture can be read without Graphviz too.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from halab.model.roles import Role
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec

#: Top to bottom, the way a request travels: zones at their order, each role between the zones
#: it joins (a link is drawn from the upper node to the lower, which is how dot ranks them).
ZONE_LEVEL = {"public": 0, "dmz": 1, "internal": 2}
ROLE_LEVEL = {Role.EDGE: 0.5, Role.LB: 1.5, Role.WEB: 2.5}
ROLE_STYLE = {
    Role.WEB: {"fillcolor": "#e3f2fd"},
    Role.LB: {"fillcolor": "#fff3e0"},
    Role.EDGE: {"fillcolor": "#ede7f6"},
}


def lab_graph(spec: LabSpec, vip_holder: str | None = None) -> graphviz.Graph:
    """The picture as a Graphviz graph (no file, no ``dot`` needed)."""
    graph = graphviz.Graph(
        f"hwl-{spec.stack}",
        graph_attr={"label": f"ha-web-lab, stack {spec.stack}", "labelloc": "t", "rankdir": "TB"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10"},
    )
    for name, zone in spec.zones.items():
        lines = [f"{name.value} {zone.cidr}", f"{zone.mode.value}"]
        if zone.host_ip is not None:
            lines.append(f"hypervisor {zone.host_ip}")
        if zone.gateway_ip is not None and zone.gateway_ip != zone.host_ip:
            lines.append(f"gateway {zone.gateway_ip}")
        graph.node(f"zone-{name.value}", "\n".join(lines), shape="oval", fillcolor="#f5f5f5")
    for host in spec.plan.hosts:
        label = f"{host.name}\n{host.role.value}, {host.vcpus} vCPU, {host.memory_mib} MiB"
        graph.node(host.name, label, **ROLE_STYLE[host.role])
        for leg in host.legs:
            ends = (f"zone-{leg.zone.value}", host.name)
            if ZONE_LEVEL[leg.zone.value] > ROLE_LEVEL[host.role]:
                ends = ends[::-1]
            graph.edge(*ends, label=f"{leg.ifname} {leg.address}")
    held = f"held by {vip_holder}" if vip_holder else "VRRP"
    graph.node("vip", f"VIP {spec.vip_address}\n{held}", shape="ellipse", fillcolor="#fffde7")
    graph.edge("zone-dmz", "vip", style="dotted")
    for lb in spec.plan.hosts_with_role(Role.LB):
        graph.edge(
            "vip",
            lb.name,
            style="bold" if lb.name == vip_holder else "dashed",
            label="MASTER" if lb.name == vip_holder else "",
        )
    if spec.edge.kind is not EdgeKind.NONE:
        owner = "edge" if spec.edge.kind is EdgeKind.LINUX else "the FortiGate"
        graph.node(
            "public-ip",
            f"public IP {spec.public_address}\n{spec.plan.public_url}\nDNAT to the VIP ({owner})",
            shape="ellipse",
            fillcolor="#e8f5e9",
        )
        graph.node("client", "client", shape="plaintext", style="")
        graph.edge("client", "public-ip")
        graph.edge("public-ip", "zone-public", style="dotted")
    return graph


def write_picture(spec: LabSpec, folder: Path, vip_holder: str | None = None) -> Path:
    """``lab.dot`` and ``lab.svg`` in ``folder``; the SVG's path (RuntimeError without ``dot``)."""
    folder.mkdir(parents=True, exist_ok=True)
    graph = lab_graph(spec, vip_holder)
    (folder / "lab.dot").write_text(graph.source, encoding="utf-8")
    try:
        out = graph.render(filename="lab", directory=folder, format="svg", cleanup=True)
    except graphviz.ExecutableNotFound as exc:
        raise RuntimeError("Graphviz's dot is not installed (Debian: graphviz)") from exc
    return Path(out)
