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
import json
import shlex
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
TOKEN_PLACEHOLDER = "<secret: fortigateToken, filled in by Pulumi>"  # noqa: S105

# The FortiGate-VM's config drive. FortiGate-VM on KVM boots from an OpenStack-style config drive:
# an ISO 9660 volume labelled config-2 with the FortiOS CLI config as openstack/latest/user_data
# and the licence as openstack/content/0000, named in openstack/latest/meta_data.json as
# {"files": [{"path": "license", "content_path": "/content/0000"}]}. Sources: Fortinet's
# "FortiGate-VM on KVM > Cloud-init" page (docs.fortinet.com/document/fortigate/6.0.0/
# fortigate-vm-on-kvm/767662/cloud-init, cited by the scripts below; its text is not in the
# stored copies searched here), the Fortinet engineers' fortinet-solutions-cse/testbeds
# fortigate/start_fgt.sh (`mkisofs -J -R -V config-2` over openstack/latest/user_data and
# openstack/content/0000, the ISO attached as an IDE CD-ROM) and a public FortiGate script that
# writes that meta_data.json. What FortiOS does with a meta_data.json without a licence entry, or
# with "/license" for "license", no source here says: docs/fortigate-vm.md lists it as unproven.
CONFIG_DRIVE_LABEL = "config-2"
CONFIG_DRIVE_USER_DATA = "openstack/latest/user_data"
CONFIG_DRIVE_META_DATA = "openstack/latest/meta_data.json"
CONFIG_DRIVE_LICENSE = "openstack/content/0000"
#: The API admin's profile: Fortinet's own bootstrap example (fortinet/azure-templates,
#: FortiGate/Terraform/A-Single-VM/terraform/customdata.tpl) gives its API user super_admin; a
#: narrower profile that still lets the provider write VIPs and policies is not proven here.
FORTIGATE_API_PROFILE = "super_admin"
#: FortiOS's CLI reference gives the hostname 35 characters (system global, hostname size[35]).
FORTIOS_HOSTNAME_CHARS = 35
#: The FortiGate readiness wait: seconds per request, and between requests.
FORTIGATE_REQUEST_TIMEOUT_S = 5
FORTIGATE_PAUSE_S = 5


#: How often Keepalived asks whether HAProxy runs where it cannot be told (no process events):
#: a vrrp_script's interval is whole seconds, 1 at least (keepalived --config-test on 2.2.7).
HAPROXY_POLL_S = 1


@dataclass(frozen=True)
class RenderTarget:
    """Where the files will run: a VM (``netns`` None) or a network namespace of the local lab."""

    netns: str | None = None
    #: Whether Keepalived learns of HAProxy's exit from the kernel's process events, which reach
    #: only the initial PID namespace (:func:`halab.plumbing.procs.in_initial_pid_namespace`).
    #: A VM's Keepalived always does; a namespace lab started inside another PID namespace
    #: polls for HAProxy instead, every :data:`HAPROXY_POLL_S`.
    process_events: bool = True

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


def file_at(files: Iterable[RenderedFile], path: str) -> RenderedFile:
    """The file at ``path`` among ``files`` (KeyError when none is)."""
    for f in files:
        if f.path == path:
            return f
    raise KeyError(path)


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
        return file_at(self.files, path)

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
        ctx["haproxy_poll_s"] = _seconds(HAPROXY_POLL_S)
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


@dataclass(frozen=True)
class ConfigDrive:
    """The FortiGate-VM's config drive: each file by its path on the ISO (label
    :data:`CONFIG_DRIVE_LABEL`). Its user_data holds the API token, so it is a secret."""

    files: tuple[RenderedFile, ...]
    label: str = CONFIG_DRIVE_LABEL

    def file(self, path: str) -> RenderedFile:
        """The file at ``path`` on the drive."""
        return file_at(self.files, path)

    @property
    def digest(self) -> str:
        """Changes whenever any file of the drive changes: FortiOS reads the drive only at its
        first boot, so a new digest is a new disk and a new machine. (A digest of the token
        reveals nothing of it.)"""
        digest = hashlib.sha256(self.label.encode())
        for f in self.files:
            digest.update(f"{f.path}\0{f.content}\0".encode())
        return digest.hexdigest()[:12]


@dataclass(frozen=True)
class _DriveFile:
    path: str
    dir: str
    env: str


def config_drive_env(drive: ConfigDrive) -> dict[str, str]:
    """The environment :func:`config_drive_script` reads each file from (base64, by index)."""
    return {
        f"HWL_DRIVE_FILE_{index}": base64.b64encode(f.content.encode()).decode()
        for index, f in enumerate(drive.files)
    }


def config_drive_script(drive: ConfigDrive, out: str) -> str:
    """The script that builds ``drive`` as an ISO at ``out`` on this machine (the files'
    contents come from :func:`config_drive_env`)."""
    files = [
        _DriveFile(f.path, f.path.rpartition("/")[0], f"HWL_DRIVE_FILE_{index}")
        for index, f in enumerate(drive.files)
    ]
    return render_template(
        "config-drive.sh.j2", label=drive.label, out=shlex.quote(out), files=files
    )


def fortigate_config_drive(
    spec: LabSpec, token: str = TOKEN_PLACEHOLDER, license_text: str | None = None
) -> ConfigDrive:
    """The FortiGate-VM's config drive (``edge: fortigate-vm``): its first-boot config from
    ``fortigate-bootstrap.conf.j2``, meta_data.json, and the licence when there is one.

    The config sets the ports from the plan (WAN in the Public zone, DMZ gateway), a default
    route to the Public zone's gateway, HTTPS and ping on the WAN port, and an API admin with
    ``token`` that only the Public zone's hypervisor address (this machine) may use. ``token``
    and ``license_text`` are filled in by Pulumi inside ``apply``.
    """
    fortigate = spec.plan.fortigate
    if fortigate is None:
        raise ValueError(f"edge {spec.edge.kind.value!r} has no FortiGate-VM")
    trusthost = spec.zones[ZoneName.PUBLIC].host_ip
    assert trusthost is not None  # the spec refuses fortigate-vm without it
    user_data = render_template(
        "fortigate-bootstrap.conf.j2",
        hostname=f"{spec.lab_name}-{fortigate.name}"[:FORTIOS_HOSTNAME_CHARS].rstrip("-"),
        stack=spec.stack,
        wan=fortigate.leg(ZoneName.PUBLIC),
        dmz=fortigate.leg(ZoneName.DMZ),
        gateway=fortigate.default_gateway,
        api_user=f"{spec.plan.fortios.prefix}-api",
        token=token,
        accprofile=FORTIGATE_API_PROFILE,
        vdom=spec.edge.fortigate.vdom,
        trusthost=trusthost,
    )
    meta: dict[str, Any] = {}
    files = [RenderedFile(CONFIG_DRIVE_USER_DATA, user_data, "0600", secret=True)]
    if license_text is not None:
        # The drive's own path of the file (relative to openstack/), under the name FortiOS
        # looks for.
        meta["files"] = [{"path": "license", "content_path": "/content/0000"}]
        files.append(RenderedFile(CONFIG_DRIVE_LICENSE, license_text, "0600", secret=True))
    files.insert(1, RenderedFile(CONFIG_DRIVE_META_DATA, json.dumps(meta, indent=2) + "\n"))
    return ConfigDrive(files=tuple(files))


def fortigate_ready_script(spec: LabSpec) -> str:
    """The wait `pulumi up` runs on this machine before the FortiOS provider's first call: the
    FortiGate-VM's API answers ``/api/v2/monitor/system/status`` with the token (from the
    environment), bounded by ``readinessTimeoutS``. It verifies the certificate as the provider
    does: ``fortigateInsecure``, else the CA file, else the CA text (from the environment)."""
    fortigate = spec.edge.fortigate
    per_attempt = FORTIGATE_REQUEST_TIMEOUT_S + FORTIGATE_PAUSE_S
    tls_args = ""
    if fortigate.insecure:
        tls_args = "--insecure"
    elif fortigate.ca_bundle_file:
        tls_args = "--cacert " + shlex.quote(str(Path(fortigate.ca_bundle_file).expanduser()))
    return render_template(
        "fortigate-ready.sh.j2",
        url=shlex.quote(f"https://{spec.fortigate_api_host}/api/v2/monitor/system/status"),
        attempts=max(3, spec.readiness.timeout_s // per_attempt),
        request_timeout_s=FORTIGATE_REQUEST_TIMEOUT_S,
        pause_s=FORTIGATE_PAUSE_S,
        tls_args=tls_args,
        ca_from_env=bool(fortigate.ca_bundle) and not fortigate.insecure,
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
