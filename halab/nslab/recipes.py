"""How each role runs in the namespace lab: one small recipe per role, picked by role.

A VM gets its packages' own files and systemd; a namespace host gets only the rendered files,
so a recipe supplies what a VM would have around them (nginx's main config, the site link, the
folders the daemons write to), says which folders of the host's tree are bind-mounted over the
real paths, and how each daemon starts (argv through :mod:`halab.plumbing.nsexec`, its log). The
files themselves are the renderer's, unedited.
"""

from __future__ import annotations

import pwd
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from halab.model.plan import ResolvedHost
from halab.model.roles import APP, PATHS, Role
from halab.plumbing import procs
from halab.render.hosts import RenderTarget

#: Private main config for nginx: Debian's nginx.conf cut to what the rendered site needs. A VM
#: gets Debian's own file from the package; the rendered site is the part we own.
NGINX_MAIN = """\
# ha-web-lab local lab: nginx's main config (a VM has Debian's); includes the rendered site.
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;

events {
    worker_connections 1024;
}

http {
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    access_log off;
    include /etc/nginx/sites-enabled/*;
}
"""


@dataclass(frozen=True)
class Place:
    """Where one host of the lab lives: its tree, its log folder, its namespace, and what its
    files were rendered for."""

    host: ResolvedHost
    tree: Path
    logs: Path
    netns: str
    render_target: RenderTarget


@dataclass(frozen=True)
class Recipe:
    """How one daemon of a host is started (argv through nsexec, its log)."""

    host: str
    name: str
    argv: tuple[str, ...]
    log: str
    #: Files to delete before a start (stale pid files block Keepalived).
    stale: tuple[str, ...] = ()
    #: The name the process runs under once started (after nsexec's exec): the lab waits for
    #: it, because Keepalived counts its tracked process by that name when it starts.
    runs_as: str | None = None


class RoleRecipe(Protocol):
    """What the lab needs to know to run one role in a namespace."""

    def prepare(self, place: Place) -> None:
        """Add what a VM would have around the rendered files."""
        ...

    def folders(self) -> list[str]:
        """Real paths of the folders bind-mounted from the host's tree."""
        ...

    def daemons(self, place: Place, binds: list[tuple[str, str]]) -> list[Recipe]:
        """The host's daemons in start order."""
        ...


def parse_unit(text: str) -> dict[str, list[str]]:
    """The ``[Service]`` keys of a systemd unit (repeated keys keep every value)."""
    section = ""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _mkdirs(tree: Path, *subs: str) -> None:
    for sub in subs:
        (tree / sub).mkdir(parents=True, exist_ok=True)


class WebRecipe:
    """The app (the rendered unit's command, user and environment), then nginx."""

    def prepare(self, place: Place) -> None:
        """nginx's main config and the site link the setup script makes on a VM."""
        nginx = place.tree / "etc/nginx"
        (nginx / "nginx.conf").write_text(NGINX_MAIN, encoding="utf-8")
        enabled = nginx / "sites-enabled"
        enabled.mkdir(parents=True, exist_ok=True)
        # What the setup script does: link the rendered site, no default site.
        (enabled / "ha-web-lab").symlink_to(PATHS.nginx_site)
        _mkdirs(place.tree, "run", "var/log/nginx", "var/lib/nginx")

    def folders(self) -> list[str]:
        """nginx's config, the app, its run and log folders."""
        return ["/etc/nginx", "/opt", "/run", "/var/log/nginx", "/var/lib/nginx"]

    def daemons(self, place: Place, binds: list[tuple[str, str]]) -> list[Recipe]:
        """uvicorn as the rendered unit starts it, then nginx in the foreground."""
        unit = parse_unit((place.tree / PATHS.app_unit.lstrip("/")).read_text(encoding="utf-8"))
        env: dict[str, str] = {}
        for item in unit.get("Environment", []):
            for pair in shlex.split(item):
                key, _, value = pair.partition("=")
                env[key] = value
        user = unit.get("User", [APP.user])[-1]
        if not _user_exists(user):
            # The VM creates this system user in cloud-init; the lab does not add users here.
            user = "nobody"
        exec_start = shlex.split(unit["ExecStart"][-1])
        workdir = unit.get("WorkingDirectory", [APP.dir])[-1]
        app = procs.nsexec_argv(
            exec_start, net=place.netns, binds=binds, chdir=workdir, user=user, env=env
        )
        nginx = procs.nsexec_argv(
            ["/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"],
            net=place.netns,
            binds=binds,
        )
        name = place.host.name
        return [
            Recipe(name, "uvicorn", tuple(app), str(place.logs / "uvicorn.log")),
            Recipe(name, "nginx", tuple(nginx), str(place.logs / "nginx.log")),
        ]


#: What Keepalived 2.3's package installs beside the config: how the binary was built.
KEEPALIVED_BUILD_OPTIONS = Path("/etc/keepalived/keepalived.config-opts")


class LbRecipe:
    """A receiver for HAProxy's log, HAProxy under its own name, then Keepalived."""

    def prepare(self, place: Place) -> None:
        """HAProxy's folders, the link that gives this LB's HAProxy a name of its own, and
        Keepalived's build options beside its config."""
        _mkdirs(place.tree, "run/haproxy", "var/lib/haproxy/dev", "bin", "etc/keepalived")
        link = place.tree / "bin" / place.render_target.haproxy_process_name(place.host.name)
        link.symlink_to("/usr/sbin/haproxy")
        # Keepalived 2.3 (trixie) will not start without the build options its package keeps in
        # /etc/keepalived ("Unable to read build config options file"); the host's folder here
        # stands in for that one, so it gets the machine's copy. 2.2 (bookworm) has none.
        if KEEPALIVED_BUILD_OPTIONS.is_file():
            shutil.copy(KEEPALIVED_BUILD_OPTIONS, place.tree / "etc/keepalived")

    def folders(self) -> list[str]:
        """HAProxy's and Keepalived's config, HAProxy's chroot and run folder."""
        return ["/etc/haproxy", "/etc/keepalived", "/var/lib/haproxy", "/run/haproxy"]

    def daemons(self, place: Place, binds: list[tuple[str, str]]) -> list[Recipe]:
        """devlog, HAProxy, Keepalived (moving itself into the namespace)."""
        tree, logs, name = place.tree, place.logs, place.host.name
        # rsyslog's socket inside HAProxy's chroot on a VM; here a tiny receiver.
        devlog = (
            sys.executable, "-I", "-S", str(Path(__file__).with_name("devlog.py")),
            str(tree / "var/lib/haproxy/dev/log"), str(logs / "haproxy-requests.log"),
        )  # fmt: skip
        process = place.render_target.haproxy_process_name(name)
        hap = procs.nsexec_argv(
            [str(tree / "bin" / process), "-db", "-f", PATHS.haproxy_cfg],
            net=place.netns,
            binds=binds,
        )
        # Every child's pid file in this host's tree. Left to itself the BFD child writes
        # /run/keepalived/<netns>/bfd.pid, which a kill leaves behind; the next lab's
        # Keepalived found a live process under that stale PID and would not start.
        pids = [
            str(tree / "run" / f"keepalived{s}.pid") for s in ("", "-vrrp", "-checkers", "-bfd")
        ]
        kad = procs.nsexec_argv(
            [
                "/usr/sbin/keepalived", "--dont-fork", "--log-console", "--log-detail",
                "-f", PATHS.keepalived_conf, "-p", pids[0], "-r", pids[1], "-c", pids[2],
                "-b", pids[3],
            ],
            # No --net: Keepalived starts in the root namespace and moves itself (process events
            # work only there; the rendered net_namespace line says where to).
            binds=binds,
        )  # fmt: skip
        return [
            Recipe(name, "devlog", devlog, str(logs / "devlog.log")),
            Recipe(name, "haproxy", tuple(hap), str(logs / "haproxy.log"), runs_as=process),
            Recipe(name, "keepalived", tuple(kad), str(logs / "keepalived.log"), tuple(pids)),
        ]


class EdgeRecipe:
    """No daemon: the edge is its rendered firewall and kernel settings, loaded at bring-up."""

    def prepare(self, place: Place) -> None:
        """Nothing around the rendered files."""

    def folders(self) -> list[str]:
        """Nothing to bind."""
        return []

    def daemons(self, place: Place, binds: list[tuple[str, str]]) -> list[Recipe]:
        """None."""
        return []


RECIPES: dict[Role, RoleRecipe] = {
    Role.WEB: WebRecipe(),
    Role.LB: LbRecipe(),
    Role.EDGE: EdgeRecipe(),
}


def binds(place: Place) -> list[tuple[str, str]]:
    """Bind mounts that put a host's tree at the real paths (directories only)."""
    dirs = RECIPES[place.host.role].folders()
    # A bind over a folder that holds the tree itself (/run) must come last, or it would hide
    # the sources of the binds after it.
    dirs.sort(key=lambda d: str(place.tree).startswith(d.rstrip("/") + "/"))
    return [(str(place.tree / d.lstrip("/")), d) for d in dirs]
