"""Roles as data: one definition per kind of host (web, lb, edge), read by everything else.

A definition says where a host of the role sits (its legs), where its derived addresses start,
which Debian packages it needs, which files the renderer writes on it, which daemons it runs
(their systemd units on a VM, their binaries in the namespace lab), which kernel settings it
gets and what its readiness gate checks. The spec, the renderer, the namespace lab, the VM lab,
the image build and the tests read it here, so a package, a file or a daemon of a role is a
change in one place.

Pure standard library on purpose: the image build (:mod:`halab.machine.image`, standard library too)
reads the packages every role needs from :func:`all_packages`, and runs before the project's
virtualenv exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ZoneName(StrEnum):
    """The three zones of the tutorial's design; each is one libvirt network."""

    PUBLIC = "public"
    DMZ = "dmz"
    INTERNAL = "internal"


class Role(StrEnum):
    """What a host does. ``edge`` is never configured directly: ``edge: linux`` adds it."""

    WEB = "web"
    LB = "lb"
    EDGE = "edge"


@dataclass(frozen=True)
class RoleFile:
    """One file the renderer writes on a host of the role, from a template in ``cloud-init/``.

    ``secret``: its content is the lab's TLS key and certificate, which only Pulumi holds (the
    renderer writes a placeholder; Pulumi fills it in), so the host's whole seed is secret.
    """

    path: str
    template: str | None
    mode: str = "0644"
    secret: bool = False


@dataclass(frozen=True)
class Daemon:
    """A long-running process of the role: its name in drills, its unit, its binary."""

    #: What drills and reports call it (``kill_daemon(host, "haproxy")``).
    name: str
    #: The systemd unit that runs it on a VM.
    unit: str
    #: The binary (or Python package) the namespace lab runs (its Debian package:
    #: scripts/apt-packages.txt).
    binary: str


@dataclass(frozen=True)
class SysctlSetting:
    """One kernel setting of the role's ``sysctl.d`` file, with why it is there."""

    key: str
    value: str
    why: str


@dataclass(frozen=True)
class RoleDefinition:
    """Everything that makes a host of one role what it is."""

    role: Role
    #: Zones with a leg, in NIC order; the first is where the default route points.
    legs: tuple[ZoneName, ...]
    #: Offset of the first derived address per leg: network + offset + k for the k-th host.
    #: Empty for the edge, whose addresses are the public IP and the DMZ gateway.
    derived_offsets: dict[ZoneName, int]
    #: Whether ``hosts`` may list it (the edge comes from ``edge: linux``).
    configurable: bool
    #: Debian packages a VM of this role installs (cloud-init, or the project's image).
    packages: tuple[str, ...]
    #: Files beside the ones every host gets (:data:`COMMON_FILES`).
    files: tuple[RoleFile, ...]
    daemons: tuple[Daemon, ...] = ()
    sysctl: tuple[SysctlSetting, ...] = ()
    #: A system user the role's own service runs as, made by cloud-init.
    service_user: str | None = None
    #: Shell lines of the readiness gate after cloud-init and the files (jinja, the renderer's
    #: context): the role's own service answers.
    checks: tuple[str, ...] = field(default=())

    @property
    def units(self) -> tuple[str, ...]:
        """The systemd units that must be active on a healthy VM of this role."""
        return tuple(dict.fromkeys(d.unit for d in self.daemons))

    def daemon(self, name: str) -> Daemon:
        """One daemon by its drill name."""
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise KeyError(f"role {self.role} has no daemon {name!r}")


@dataclass(frozen=True)
class HostPaths:
    """Where each rendered file lives on a host."""

    app_dir: str = "/opt/ha-web-lab/app"
    app_unit: str = "/etc/systemd/system/ha-web-app.service"
    nginx_site: str = "/etc/nginx/sites-available/ha-web-lab"
    haproxy_cfg: str = "/etc/haproxy/haproxy.cfg"
    haproxy_503: str = "/etc/haproxy/errors/ha-web-lab-503.http"
    haproxy_socket: str = "/run/haproxy/admin.sock"
    tls_pem: str = "/etc/haproxy/certs/ha-web-lab.pem"
    keepalived_conf: str = "/etc/keepalived/keepalived.conf"
    nftables: str = "/etc/nftables.conf"
    sysctl: str = "/etc/sysctl.d/60-ha-web-lab.conf"
    sshd: str = "/etc/ssh/sshd_config.d/60-ha-web-lab.conf"
    setup: str = "/usr/local/sbin/ha-web-lab-setup"


PATHS = HostPaths()


@dataclass(frozen=True)
class AppSettings:
    """How the web app runs: an unprivileged user, loopback, one port."""

    user: str = "hwl-app"
    dir: str = PATHS.app_dir
    port: int = 8000
    unit: str = "ha-web-app.service"


APP = AppSettings()

#: Files every host gets, whatever its role (the setup script last: it applies the others).
COMMON_FILES = (
    RoleFile(PATHS.nftables, "nftables.nft.j2", "0755"),
    RoleFile(PATHS.sysctl, "sysctl.conf.j2"),
    RoleFile(PATHS.sshd, "sshd.conf.j2"),
    RoleFile(PATHS.setup, "setup.sh.j2", "0755"),
)
#: Packages every VM needs: its host firewall.
COMMON_PACKAGES = ("nftables",)

_NO_REDIRECTS = "Accept no redirects and no source routes: the lab's routes are the ones we set."

ROLES: dict[Role, RoleDefinition] = {
    role.role: role
    for role in (
        RoleDefinition(
            role=Role.WEB,
            legs=(ZoneName.INTERNAL,),
            derived_offsets={ZoneName.INTERNAL: 10},
            configurable=True,
            # nginx, not nginx-light: in bookworm nginx-light is an empty package that depends on
            # nginx (the image listed one, cloud-init the other: one list now).
            packages=("nginx", "python3-fastapi", "python3-uvicorn"),
            files=(
                RoleFile(f"{PATHS.app_dir}/main.py", "app.py.j2"),
                RoleFile(PATHS.app_unit, "ha-web-app.service.j2"),
                RoleFile(PATHS.nginx_site, "nginx-site.conf.j2"),
            ),
            daemons=(
                Daemon("uvicorn", APP.unit, "/usr/lib/python3/dist-packages/uvicorn"),
                Daemon("nginx", "nginx.service", "/usr/sbin/nginx"),
            ),
            service_user=APP.user,
            checks=(
                'retry systemctl is-active --quiet {{ units }} || fail "the app or nginx is not '
                'running"',
                "retry curl -fsS --max-time 2 -o /dev/null http://{{ web_leg.address }}"
                "{{ haproxy.health_check_path }} ||\n"
                '    fail "{{ haproxy.health_check_path }} does not answer through nginx"',
            ),
        ),
        RoleDefinition(
            role=Role.LB,
            legs=(ZoneName.DMZ, ZoneName.INTERNAL),
            derived_offsets={ZoneName.DMZ: 11, ZoneName.INTERNAL: 2},
            configurable=True,
            packages=("haproxy", "keepalived"),
            files=(
                RoleFile(PATHS.haproxy_cfg, "haproxy.cfg.j2"),
                RoleFile(PATHS.haproxy_503, "haproxy-503.http.j2"),
                RoleFile(PATHS.keepalived_conf, "keepalived.conf.j2"),
                RoleFile(PATHS.tls_pem, None, "0600", secret=True),
            ),
            daemons=(
                Daemon("haproxy", "haproxy.service", "/usr/sbin/haproxy"),
                Daemon("keepalived", "keepalived.service", "/usr/sbin/keepalived"),
            ),
            sysctl=(
                SysctlSetting(
                    "net.ipv4.ip_nonlocal_bind",
                    "1",
                    "HAProxy on the backup binds the VIP before it owns it.",
                ),
            ),
            checks=(
                'sudo haproxy -c -q -f {{ paths.haproxy_cfg }} || fail "haproxy.cfg does not '
                'validate"',
                "retry systemctl is-active --quiet {{ units }} ||\n"
                '    fail "HAProxy or Keepalived is not running"',
            ),
        ),
        RoleDefinition(
            role=Role.EDGE,
            legs=(ZoneName.PUBLIC, ZoneName.DMZ),
            derived_offsets={},
            configurable=False,
            packages=(),
            files=(),
            sysctl=(
                SysctlSetting(
                    "net.ipv4.ip_forward",
                    "1",
                    "The edge routes between the public zone and the DMZ.",
                ),
            ),
            checks=(
                'retry sudo nft list table ip hwl_nat >/dev/null || fail "the DNAT table is not '
                'loaded"',
                "# /proc, not sysctl: /usr/sbin is not on a non-root SSH user's PATH.\n"
                '[[ $(cat /proc/sys/net/ipv4/ip_forward) == 1 ]] || fail "IP forwarding is off"',
            ),
        ),
    )
}

#: Kernel settings every host gets after its role's.
COMMON_SYSCTL = (
    SysctlSetting("net.ipv4.conf.all.accept_redirects", "0", _NO_REDIRECTS),
    SysctlSetting("net.ipv4.conf.all.send_redirects", "0", ""),
    SysctlSetting("net.ipv4.conf.all.accept_source_route", "0", ""),
)


def packages(role: Role) -> tuple[str, ...]:
    """Every Debian package a VM of ``role`` installs, in a stable order."""
    return tuple(dict.fromkeys((*ROLES[role].packages, *COMMON_PACKAGES)))


def all_packages() -> tuple[str, ...]:
    """The packages of every role (what an image that serves any role must have)."""
    return tuple(dict.fromkeys(p for role in Role for p in packages(role)))


def lab_binaries() -> tuple[str, ...]:
    """The binary of every daemon the namespace lab runs, over all roles."""
    return tuple(dict.fromkeys(d.binary for role in ROLES.values() for d in role.daemons))
