"""The one renderer: spec -> every file of every host.

Config files come from the jinja2 templates in ``cloud-init/`` (``StrictUndefined``: a missing
value is an error, never an empty string). cloud-init's user-data, network-config and meta-data are
built as data and dumped once. The local namespace lab consumes these same files; the only
differences between a VM and a namespace host come from :class:`RenderTarget` and are confined to
Keepalived's ``net_namespace`` line and the HAProxy process name it tracks.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from halab.model.plan import ResolvedHost
from halab.model.roles import (
    APP,
    COMMON_FILES,
    COMMON_SYSCTL,
    PATHS,
    ROLES,
    Role,
    ZoneName,
    packages,
)
from halab.model.sections import STANDARD_DOWN_TIMER_ADVERTS
from halab.model.spec import LabSpec, short_hash

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "cloud-init"
TLS_PLACEHOLDER = "<secret: the lab's TLS certificate and key (PEM), filled in by Pulumi>"


@dataclass(frozen=True)
class RenderTarget:
    """Where the files will run: a VM (``netns`` None) or a network namespace of the local lab."""

    netns: str | None = None

    @property
    def is_vm(self) -> bool:
        """True when rendering for a real VM."""
        return self.netns is None

    def haproxy_process_name(self, host: str) -> str:
        """Name Keepalived tracks. Namespace hosts share one process list, so each LB's HAProxy
        runs under its own name there (see the measurements note): the host's, and a short hash
        of its namespace, which names its lab too, so two labs up at once never track each
        other's HAProxy. A process name has 15 characters. On a VM it is plain haproxy."""
        if self.netns is None:
            return "haproxy"
        return f"hap-{host}"[:9] + "-" + short_hash(self.netns)[:5]


VM = RenderTarget()


@dataclass(frozen=True)
class RenderedFile:
    """One file a host gets, with its path and mode."""

    path: str
    content: str
    mode: str = "0644"
    owner: str = "root:root"
    secret: bool = False


@dataclass(frozen=True)
class RenderedHost:
    """Everything one host is seeded with."""

    host: ResolvedHost
    files: tuple[RenderedFile, ...]
    user_data: str
    network_config: str
    meta_data: str
    instance_id: str
    #: The readiness gate `pulumi up` runs on the VM over SSH ("" with the gates off).
    gate_script: str = ""

    @property
    def config_hash(self) -> str:
        """Changes whenever any role file or the network config changes."""
        digest = hashlib.sha256(self.network_config.encode())
        for f in self.files:
            digest.update(f"{f.path}\0{f.mode}\0{f.content}\0".encode())
        return digest.hexdigest()[:16]

    def file(self, path: str) -> RenderedFile:
        """The rendered file at ``path``."""
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    @property
    def holds_secret(self) -> bool:
        """True when a file is a secret (an LB's TLS key): only Pulumi can fill it in."""
        return any(f.secret for f in self.files)

    def with_secret(self, spec: LabSpec, content: str) -> RenderedHost:
        """This host with ``content`` in its secret file, and the seed made again around it.

        The templates are not run again: only the secret changes, inside Pulumi's ``apply``.
        """
        files = tuple(replace(f, content=content) if f.secret else f for f in self.files)
        return seed_host(spec, self.host, files)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - config files, not HTML
        trim_blocks=False,
        # Shell templates use ${#array[@]}; jinja's default "{#" comment marker would eat it.
        comment_start_string="{##",
        comment_end_string="##}",
    )
    # File contents travel inside shell scripts base64-encoded: no quoting can break them.
    env.filters["b64"] = lambda text: base64.b64encode(text.encode()).decode()
    env.filters["nft_set"] = nft_set
    return env


def nft_set(items: Any) -> str:
    """An nftables match value: one element as itself, several as an anonymous set."""
    values = [str(i) for i in items]
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


def render_template(name: str, **context: Any) -> str:
    """Render one template from ``cloud-init/``."""
    return _environment().get_template(name).render(**context)


@dataclass(frozen=True)
class _WebBackend:
    name: str
    leg_address: str


def _context(spec: LabSpec, host: ResolvedHost, target: RenderTarget) -> dict[str, Any]:
    role = ROLES[host.role]
    # Each template gets the sections it reads, not the whole spec.
    ctx: dict[str, Any] = {
        "vrrp": spec.vrrp,
        "haproxy": spec.haproxy,
        "vip": spec.vip_address,
        "ports": spec.edge.ports,
        "host": host,
        "target": target,
        "paths": PATHS,
        "app": APP,
        "rule": spec.plan.firewall_rule,
        "dmz_cidr": spec.zones[ZoneName.DMZ].cidr,
        "sysctl": (*role.sysctl, *COMMON_SYSCTL),
        "units": " ".join(role.units),
    }
    if host.role is Role.WEB:
        ctx["web_leg"] = host.leg(ZoneName.INTERNAL)
        ctx["lb_internal"] = [
            str(lb.leg(ZoneName.INTERNAL).address) for lb in spec.plan.hosts_with_role(Role.LB)
        ]
    if host.role is Role.LB:
        ctx["dmz_leg"] = host.leg(ZoneName.DMZ)
        ctx["member"] = spec.plan.vrrp_member(host.name)
        ctx["peer_names"] = {
            m.src_ip: m.host for m in spec.plan.vrrp_members if m.host != host.name
        }
        # A pair's files read as they always did ("the peer"), so its LBs see no change.
        ctx["peers_said"] = "the peer LB" if len(ctx["peer_names"]) == 1 else "the peer LBs"
        ctx["webs"] = [
            _WebBackend(w.name, str(w.leg(ZoneName.INTERNAL).address))
            for w in spec.plan.hosts_with_role(Role.WEB)
        ]
        ctx["advert_int"] = _seconds(spec.vrrp.advert_s)
        ctx["instance_name"] = f"VI_{spec.vrrp.router_id}"
        ctx["standard_down_timer_adverts"] = STANDARD_DOWN_TIMER_ADVERTS
        ctx["haproxy_process_name"] = target.haproxy_process_name(host.name)
        ctx["keepalived_script_user"] = "nobody"
    return ctx


def _seconds(seconds: float) -> str:
    # Keepalived reads advert_int in seconds; VRRPv3's centiseconds are its finest step.
    text = f"{seconds:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def role_files(
    spec: LabSpec, host: ResolvedHost, target: RenderTarget = VM, tls_pem: str = TLS_PLACEHOLDER
) -> tuple[RenderedFile, ...]:
    """The config files a host's user-data writes (also what the local lab runs): every host's
    own, then its role's (:mod:`halab.model.roles`), each from its template; the secret one is
    ``tls_pem``."""
    ctx = _context(spec, host, target)
    return tuple(
        RenderedFile(
            f.path,
            tls_pem if f.template is None else render_template(f.template, **ctx),
            f.mode,
            secret=f.secret,
        )
        for f in (*COMMON_FILES, *ROLES[host.role].files)
    )


def network_config(host: ResolvedHost) -> dict[str, Any]:
    """cloud-init network-config v2: each NIC matched by its pinned MAC, static address.

    No DHCP anywhere: libvirt's lease-waiting is known to hang with this provider.
    """
    ethernets: dict[str, Any] = {}
    for index, leg in enumerate(host.legs):
        eth: dict[str, Any] = {
            "match": {"macaddress": leg.mac},
            "set-name": leg.ifname,
            "dhcp4": False,
            "dhcp6": False,
            "addresses": [str(leg.interface)],
        }
        # One default route, in the first zone of the role (where replies to clients go).
        if index == 0 and host.default_gateway is not None:
            eth["routes"] = [{"to": "0.0.0.0/0", "via": str(host.default_gateway)}]
        if host.dns_servers and host.dns_servers[0] in leg.network:
            eth["nameservers"] = {"addresses": [str(ip) for ip in host.dns_servers]}
        ethernets[leg.ifname] = eth
    return {"version": 2, "ethernets": ethernets}


def user_data(spec: LabSpec, host: ResolvedHost, files: tuple[RenderedFile, ...]) -> dict[str, Any]:
    """cloud-config for a host, as data."""
    users: list[Any] = [
        {
            "name": spec.vm.admin_user,
            "groups": ["sudo"],
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": True,
        }
    ]
    if spec.vm.ssh_public_keys:  # cloud-init's schema: when given, at least one key (minItems 1)
        users[0]["ssh_authorized_keys"] = list(spec.vm.ssh_public_keys)
    service_user = ROLES[host.role].service_user
    if service_user is not None:
        users.append({"name": service_user, "system": True, "shell": "/usr/sbin/nologin"})
    doc: dict[str, Any] = {
        "hostname": host.name,
        "manage_etc_hosts": True,
        # Debian cloud images lack locales: update-locale fails without this.
        "locale": "C.UTF-8",
        "ssh_pwauth": False,
        "disable_root": True,
        "users": users,
        # Deferred: written after packages install, so no package overwrites them or asks.
        "write_files": [
            {
                "path": f.path,
                "content": f.content,
                "permissions": f.mode,
                "owner": f.owner,
                "defer": True,
            }
            for f in files
        ],
        "runcmd": [[PATHS.setup]],
    }
    if spec.vm.install_packages:
        # Images that already have everything (halab.machine.image) skip apt entirely.
        doc["package_update"] = True
        doc["packages"] = list(packages(host.role))
    return doc


def dump_cloud_config(doc: dict[str, Any]) -> str:
    """``#cloud-config`` header plus one YAML dump."""
    return "#cloud-config\n" + _dump(doc)


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so a rendered file reads as itself inside user-data."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def _dump(doc: Any) -> str:
    return yaml.dump(
        doc, Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False, width=1000
    )


def render_host(
    spec: LabSpec, host: ResolvedHost, target: RenderTarget = VM, tls_pem: str = TLS_PLACEHOLDER
) -> RenderedHost:
    """Every file for one host."""
    return seed_host(spec, host, role_files(spec, host, target, tls_pem))


def seed_host(spec: LabSpec, host: ResolvedHost, files: tuple[RenderedFile, ...]) -> RenderedHost:
    """cloud-init's three files around a host's rendered files."""
    ud = dump_cloud_config(user_data(spec, host, files))
    nc = _dump(network_config(host))
    # A new instance-id, so a new VM, whenever what it must be built from changes: NoCloud
    # applies network-config only on an instance's first boot. With the readiness gates on, the
    # gate converges the role files of a running VM over SSH, so user-data is not part of it.
    seeded = nc if spec.readiness.enabled else ud + nc
    instance_id = f"{host.name}-" + hashlib.sha256(seeded.encode()).hexdigest()[:12]
    md = _dump({"instance-id": instance_id, "local-hostname": host.name})
    rendered = RenderedHost(
        host=host,
        files=files,
        user_data=ud,
        network_config=nc,
        meta_data=md,
        instance_id=instance_id,
    )
    if not spec.readiness.enabled:
        return rendered
    return replace(rendered, gate_script=readiness_script(spec, rendered))


def render_all(
    spec: LabSpec, target: RenderTarget = VM, tls_pem: str = TLS_PLACEHOLDER
) -> dict[str, RenderedHost]:
    """Every host of the lab, by name."""
    return {h.name: render_host(spec, h, target, tls_pem) for h in spec.plan.hosts}


def write_tree(rendered: dict[str, RenderedHost], out: Path) -> list[Path]:
    """Write one folder per host: cloud-init's three files plus each file at its real path."""
    written: list[Path] = []
    for name, host in rendered.items():
        base = out / name
        seed = (
            RenderedFile("user-data", host.user_data),
            RenderedFile("network-config", host.network_config),
            RenderedFile("meta-data", host.meta_data),
        )
        written += write_files(seed, base)
        written += write_files(host.files, base / "files")
    return written


def write_files(files: Iterable[RenderedFile], root: Path) -> list[Path]:
    """Each file at its path under ``root`` (``/etc/x`` becomes ``root/etc/x``), with its mode."""
    written: list[Path] = []
    for f in files:
        path = root / f.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content, encoding="utf-8")
        path.chmod(int(f.mode, 8))
        written.append(path)
    return written


def readiness_script(spec: LabSpec, rendered: RenderedHost) -> str:
    """The gate `pulumi up` runs on a VM over SSH: cloud-init done, the role's files converged
    to ``rendered`` (so a config change needs no new VM), the role healthy."""
    ctx = _context(spec, rendered.host, VM)
    attempts = max(10, min(120, spec.readiness.timeout_s // 10))
    env = _environment()
    checks = [env.from_string(c).render(**ctx) for c in ROLES[rendered.host.role].checks]
    return render_template(
        "ready.sh.j2",
        timeout_s=spec.readiness.timeout_s,
        attempts=attempts,
        files=rendered.files,
        checks=checks,
        **ctx,
    )


def vip_check_script(spec: LabSpec, host: ResolvedHost, url: str) -> str:
    """The tier gate: every web node answers through ``url`` (the VIP, or the public IP)."""
    attempts = max(20, min(240, spec.readiness.timeout_s // 5))
    return render_template(
        "vip-check.sh.j2",
        host=host,
        url=url,
        attempts=attempts,
        web_names=[h.name for h in spec.plan.hosts_with_role(Role.WEB)],
    )
