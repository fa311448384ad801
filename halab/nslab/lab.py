"""The namespace lab: bring a stack up with the rendered files, inject faults, tear it down.

Each host runs the files :func:`halab.render.hosts.render_host` renders for
``RenderTarget(netns=...)``, unedited. They are written into a per-host tree
(``/run/ha-web-lab/<stack>/hosts/<host>/root``) that :mod:`halab.plumbing.nsexec` bind-mounts over
the real paths in a private mount namespace, so HAProxy reads ``/etc/haproxy/haproxy.cfg``, nginx
``/etc/nginx/sites-available/ha-web-lab`` and uvicorn runs in ``/opt/ha-web-lab/app`` exactly as on
a VM. What only a VM has around the files (nginx's main config, the site link, HAProxy's per-host
process name, Keepalived's pid files), which folders are bound and how each daemon starts is its
role's recipe (:mod:`halab.nslab.recipes`); how many requests/s the lab serves,
:mod:`halab.nslab.throughput`.

Keepalived is started in the root network namespace and moves itself into the host's namespace
(the rendered ``net_namespace`` line): ``vrrp_track_process`` needs the root namespace's
process-event channel. The root namespace itself is never changed.

With ``fortigate_emulator`` (a stack whose edge is a FortiGate), the edge namespace plays the
FortiGate instead of the Linux edge: it loads none of the Linux edge's nftables and runs the
FortiOS API emulator (``python -m halab fortigate-emulator --apply-nft``) on the stack's
``fortigateHost``, so only objects the FortiOS provider creates there forward anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from halab.fortigate.site import EMULATOR_COMMAND, EmulatorSite, listen_address
from halab.model.drill_settings import TargetKind
from halab.model.plan import ResolvedHost
from halab.model.roles import PATHS, Role, ZoneName, lab_binaries
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec
from halab.model.stackconfig import REPO_ROOT, StackConfig, read_stack
from halab.nslab import recipes, topology
from halab.nslab.recipes import RECIPES, Place, Recipe
from halab.nslab.state import LabState, locked, run_dir
from halab.plumbing import hostdeps, netns, procs
from halab.plumbing.process import busy_loop_argv
from halab.plumbing.procs import ProcRecord
from halab.plumbing.tls import self_signed_pem, unverified_context
from halab.render.hosts import RenderedHost, RenderTarget, render_host, write_files
from halab.target.probe import ProbeConfig
from halab.target.probe_process import ProbeProcess
from halab.target.protocol import SpecDrillTarget

#: Files the lab runs (their packages: scripts/apt-packages.txt): every role's daemons
#: (halab/model/roles.py), and what the lab itself runs around them.
REQUIRED: tuple[str, ...] = (
    *lab_binaries(),
    "/usr/sbin/nft",
    "/usr/sbin/sysctl",
    "/usr/bin/openssl",
    "/usr/bin/python3",
    "/usr/lib/python3/dist-packages/fastapi",
)

READY_TIMEOUT_S = 30.0
POLL_S = 0.02


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class EmulatedFortiGate(EmulatorSite):
    """The FortiGate emulator the edge namespace runs (:class:`EmulatorSite`), and the address it
    listens on as the edge's public leg holds it."""

    address: IPv4Interface


def emulated_fortigate(spec: LabSpec, folder: Path) -> EmulatedFortiGate:
    """The emulator for a lab spec's edge host, from the stack's FortiGate settings: it listens
    on ``fortigateHost`` (an address of the public zone, added to the edge's public leg), and
    ``fortigateWanInterface``/``fortigateDmzInterface`` stand for the edge's public/DMZ legs."""
    settings = spec.edge.fortigate
    edge = spec.plan.host("edge")
    public, dmz = edge.leg(ZoneName.PUBLIC), edge.leg(ZoneName.DMZ)
    try:
        address, port = listen_address(settings.host)
    except ValueError:
        raise LabError(
            f"fortigateHost {settings.host!r}: the emulator needs an IPv4 address of the public "
            f"zone ({public.network}) to listen on"
        ) from None
    if address not in public.network or address in {
        public.address,
        public.network.broadcast_address,
    }:
        raise LabError(
            f"fortigateHost {address} must be a free address of the public zone {public.network} "
            f"(not the public IP {public.address}, where the VIPs translate): the emulator "
            "listens there on the edge's public leg"
        )
    if settings.wan_interface == settings.dmz_interface:
        raise LabError("fortigateWanInterface and fortigateDmzInterface must differ")
    return EmulatedFortiGate(
        listen=address,
        address=IPv4Interface(f"{address}/{public.network.prefixlen}"),
        port=port,
        interfaces=((settings.wan_interface, public.ifname), (settings.dmz_interface, dmz.ifname)),
        folder=folder,
    )


def require_packages(error: Callable[[str], BaseException] = LabError) -> None:
    """Fail with the package names (apt-get install line) when a file the lab runs is missing."""
    hostdeps.require_tools(REQUIRED, error)


def lab_values(stack: str, project_dir: Path = REPO_ROOT) -> tuple[dict[str, Any], frozenset[str]]:
    """A stack's config values and secret keys, as :func:`lab_spec` takes them."""
    cfg = read_stack(stack, project_dir)
    return dict(cfg.values), cfg.secrets_present


def lab_spec(
    stack: str,
    values: dict[str, Any],
    secrets_present: Iterable[str] = (),
    overrides: dict[str, Any] | None = None,
) -> LabSpec:
    """The spec the lab runs: the stack's, with the Linux edge playing a FortiGate's role.

    A stack with ``edge: fortigate`` (dev) gets ``edge: linux`` here: the edge namespace then runs
    the nftables DNAT ruleset the renderer makes from the same :class:`FirewallRule` the FortiOS
    resources come from. LB and web files do not depend on the edge kind. (With
    ``fortigate_emulator`` the edge host keeps its legs and the FortiGate settings, but runs the
    emulator instead of those rules: see the module's docstring.)
    """
    merged = {**values, **(overrides or {})}
    if merged.get("edge") != EdgeKind.LINUX.value:
        merged["edge"] = EdgeKind.LINUX.value
    # Offline: the lab never talks to a FortiGate, so a token that is not set is no matter.
    return StackConfig(stack, merged, frozenset(secrets_present)).spec(offline=True)


class NamespaceLab(SpecDrillTarget):
    """One stack's namespace lab. Use :meth:`create` + :meth:`up`, or :meth:`attach`."""

    KIND = TargetKind.NAMESPACES

    def __init__(self, spec: LabSpec, state: LabState) -> None:
        self.spec = spec
        self.state = state
        self.topo = topology.plan(spec)
        self.root = Path(state.run_dir)
        #: The FortiGate emulator the edge runs (None: the Linux edge's own rules).
        self.fortigate: EmulatedFortiGate | None = (
            emulated_fortigate(spec, self.root / "hosts" / "edge" / "fortigate")
            if state.fortigate_emulator
            else None
        )
        self.log: Callable[[str], None] = lambda _msg: None
        #: True during ``up``: a daemon that exits then is a start-up failure (later, in a
        #: drill, daemons are killed on purpose).
        self.starting = False

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        stack: str,
        project_dir: Path = REPO_ROOT,
        overrides: dict[str, Any] | None = None,
        fortigate_emulator: bool = False,
    ) -> NamespaceLab:
        """A lab for a stack that is not up yet (nothing is created until :meth:`up`).

        ``fortigate_emulator``: the edge plays the stack's FortiGate (``edge: fortigate``) with
        the emulator, which forwards nothing until the FortiOS provider configures it.
        """
        values, secrets = lab_values(stack, project_dir)
        values = {**values, **(overrides or {})}
        if fortigate_emulator and values.get("edge") != EdgeKind.FORTIGATE.value:
            raise LabError(f"stack {stack!r} has no FortiGate edge (edge: fortigate) to emulate")
        spec = lab_spec(stack, values, secrets)
        state = LabState(
            stack=stack,
            lab_name=spec.lab_name,
            values=values,
            secrets_present=sorted(secrets),
            run_dir=str(run_dir(stack)),
            fortigate_emulator=fortigate_emulator,
        )
        return cls(spec, state)

    @classmethod
    def attach(cls, stack: str) -> NamespaceLab:
        """The lab of a stack that ``up`` started (from its state file)."""
        state = LabState.load(stack)
        if state is None:
            raise LabError(
                f"no lab is up for stack {stack!r}: run `python -m halab lab up --stack {stack}`"
            )
        spec = lab_spec(stack, state.values, state.secrets_present)
        return cls(spec, state)

    # ---- naming ----------------------------------------------------------------------------

    def ns(self, host: str) -> str:
        """Namespace name of a host (or ``client``)."""
        return self.topo.node(host).netns

    def tree(self, host: str) -> Path:
        """A host's file tree; bind-mounted over the real paths."""
        return self.root / "hosts" / host / "root"

    def logdir(self, host: str) -> Path:
        """Where a host's daemons write their output."""
        return self.root / "hosts" / host / "log"

    @property
    def lbs(self) -> tuple[ResolvedHost, ...]:
        """The LB hosts, preferred master first, then by falling priority."""
        return self.spec.plan.lbs_by_priority

    @property
    def webs(self) -> tuple[ResolvedHost, ...]:
        """The web hosts."""
        return self.spec.plan.hosts_with_role(Role.WEB)

    def render_target(self, host: str) -> RenderTarget:
        """The render target of a host: its namespace, and whether Keepalived can be told of
        HAProxy's exit here (the lab's daemons share this process's PID namespace)."""
        return RenderTarget(netns=self.ns(host), process_events=procs.in_initial_pid_namespace())

    # ---- files -----------------------------------------------------------------------------

    def render(self, tls_pem: str) -> dict[str, RenderedHost]:
        """Render every host for its namespace target (the one renderer, unedited files)."""
        return {
            h.name: render_host(self.spec, h, self.render_target(h.name), tls_pem)
            for h in self.spec.plan.hosts
        }

    def _write_tree(self, rendered: RenderedHost) -> None:
        host = rendered.host
        tree = self.tree(host.name)
        write_files(rendered.files, tree)
        (self.logdir(host.name)).mkdir(parents=True, exist_ok=True)
        RECIPES[host.role].prepare(self.place(host))
        for path in [tree, *tree.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)

    def place(self, host: ResolvedHost) -> Place:
        """Where a host lives in the lab (what its role's recipe reads)."""
        name = host.name
        return Place(
            host, self.tree(name), self.logdir(name), self.ns(name), self.render_target(name)
        )

    # ---- daemons ---------------------------------------------------------------------------

    def daemons(self, host: ResolvedHost) -> list[Recipe]:
        """The daemons of a host in start order, with their argv (its role's recipe)."""
        place = self.place(host)
        found = RECIPES[host.role].daemons(place, recipes.binds(place))
        if host.role is Role.EDGE and self.fortigate is not None:
            # PYTHONPATH: the emulator is this checkout's halab, whatever the daemon's cwd.
            argv = procs.nsexec_argv(
                self.fortigate.argv(), net=place.netns, env={"PYTHONPATH": str(REPO_ROOT)}
            )
            found.append(
                Recipe(
                    host.name,
                    EMULATOR_COMMAND,
                    tuple(argv),
                    str(place.logs / f"{EMULATOR_COMMAND}.log"),
                )
            )
        return found

    def start(self, daemon: Recipe) -> ProcRecord:
        """Start one daemon (refusing a second copy) and record it at once."""
        running = self.procs(daemon.host, daemon.name)
        if running:
            raise LabError(f"{daemon.name} on {daemon.host} runs already (PID {running[0].pid})")
        for path in daemon.stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        pid = procs.spawn(daemon.argv, Path(daemon.log))
        record = ProcRecord(
            pid=pid,
            starttime=procs.starttime(pid),
            host=daemon.host,
            name=daemon.name,
            argv=list(daemon.argv),
            log=daemon.log,
        )
        self.state.processes.append(record)
        self.state.save()
        if daemon.runs_as is not None:
            self._wait_runs_as(record, daemon.runs_as)
        return record

    def _wait_runs_as(self, record: ProcRecord, name: str, timeout: float = 10.0) -> None:
        # Keepalived counts the HAProxy it tracks by process name when it starts, and learns of
        # later starts only through the kernel's process events. Where there are none (a PID
        # namespace other than the first, as in make fresh-test), a Keepalived started while
        # HAProxy was still nsexec went to FAULT for good ("quorum not achieved"): seen twice.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = procs.comm(record.pid, record.starttime)
            if now == name:
                return
            if now is None:
                break
            time.sleep(POLL_S)
        raise LabError(
            f"{record.name} on {record.host} does not run as {name!r}: "
            + self._tails(record.host, record.name)
        )

    def daemon(self, host: str, name: str) -> Recipe:
        """The start recipe of one daemon."""
        for d in self.daemons(self.spec.plan.host(host)):
            if d.name == name:
                return d
        raise KeyError(f"{host} has no daemon {name}")

    def procs(self, host: str | None = None, name: str | None = None) -> list[ProcRecord]:
        """Recorded processes that still run, optionally of one host / daemon."""
        return [
            p
            for p in self.state.processes
            if (host is None or p.host == host)
            and (name is None or p.name == name)
            and procs.alive(p.pid, p.starttime)
        ]

    def record_children(self) -> None:
        """Add the daemons' own children (workers, VRRP child) to the record."""
        known = {p.pid for p in self.state.processes}
        for parent in self.procs():
            for pid, start in procs.children_of([parent.pid]).items():
                if pid not in known:
                    self.state.processes.append(
                        ProcRecord(pid, start, parent.host, f"{parent.name}-child", [], parent.log)
                    )
                    known.add(pid)
        self.state.save()

    # ---- bring-up --------------------------------------------------------------------------

    def up(
        self, progress: Callable[[str], None] = print, timeout: float = READY_TIMEOUT_S
    ) -> float:
        """Create everything and wait until the lab serves; returns the bring-up time (s).

        Any failure (or Ctrl-C) removes whatever was created before it is re-raised.
        """
        require_packages()
        self.log = progress
        with locked(self.spec.stack):
            if LabState.load(self.spec.stack) is not None:
                raise LabError(
                    f"a lab for stack {self.spec.stack!r} is recorded as up: "
                    f"run `python -m halab lab down --stack {self.spec.stack}` first"
                )
            for name in self.topo.namespaces:
                if netns.exists(name):
                    raise LabError(f"network namespace {name} exists: run `lab down` first")
            t0 = time.monotonic()
            self.state.created = time.time()
            try:
                self.starting = True
                self._up(progress, t0, timeout)
                self.starting = False
            except BaseException:
                progress("bring-up failed: removing everything it created")
                self._down(progress=lambda _m: None)
                raise
            took = time.monotonic() - t0
            self.state.ready = time.time()
            self.state.notes.append(f"bring-up {took:.2f}s")
            self.state.save()
            progress(f"lab {self.spec.lab_name} ready in {took:.2f}s: {self.spec.plan.public_url}")
            return took

    def _up(self, progress: Callable[[str], None], t0: float, timeout: float) -> None:
        def step(msg: str) -> None:
            progress(f"[{time.monotonic() - t0:5.2f}s] {msg}")

        self.root.mkdir(parents=True, exist_ok=True)
        self.state.dirs.append(str(self.root))
        self.state.save()
        step("rendering files (throwaway self-signed TLS certificate)")
        try:
            pem = self_signed_pem(str(self.spec.vip_address))
        except RuntimeError as exc:
            raise LabError(str(exc)) from None
        rendered = self.render(pem)
        for files in rendered.values():
            self._write_tree(files)
        step(f"namespaces: {', '.join(self.topo.namespaces)}")
        for name in self.topo.namespaces:
            # Recorded before creation: a failure in between still gets it removed.
            self.state.namespaces.append(name)
            self.state.save()
            topology.create_namespace(name)
        topology.build_switch(self.topo)
        for node in self.topo.nodes:
            topology.wire_node(self.topo, node)
        if self.fortigate is not None:
            # The FortiGate's own address (port1's, in the tutorial) beside the public IP.
            topology.add_address(self.ns("edge"), ZoneName.PUBLIC.value, self.fortigate.address)
        step("kernel settings and host firewalls (rendered sysctl.d and nftables.conf)")
        commands: list[list[str]] = []
        for resolved in self.spec.plan.hosts:
            tree = self.tree(resolved.name)
            ns = self.ns(resolved.name)
            sysctl = str(tree / PATHS.sysctl.lstrip("/"))
            nft = str(tree / PATHS.nftables.lstrip("/"))
            commands.append(procs.nsexec_argv(["/usr/sbin/sysctl", "-q", "-p", sysctl], net=ns))
            if resolved.role is Role.EDGE and self.fortigate is not None:
                # A packet must pass every base chain on its hook: the Linux edge's forward
                # policy drop and DNAT would stack with the FortiGate's. The emulator's table
                # alone decides; the edge's sysctl (forwarding) still applies.
                continue
            commands.append(procs.nsexec_argv(["/usr/sbin/nft", "-f", nft], net=ns))
        procs.run_all(commands)
        if self.fortigate is not None:
            step(f"edge: {EMULATOR_COMMAND} on https://{self.fortigate.hostname} (--apply-nft)")
            self.start(self.daemon("edge", EMULATOR_COMMAND))
        step("web nodes: uvicorn + nginx; LBs: haproxy")
        for host in (*self.webs, *self.lbs):
            for d in self.daemons(host):
                if d.name != "keepalived":
                    self.start(d)
        # Keepalived makes /run/keepalived/<netns>/ in the machine's /run: record it for `down`.
        kdir = Path("/run/keepalived")
        self.state.empty_dirs += [str(kdir / self.ns(lb.name)) for lb in self.lbs]
        if not kdir.exists():
            self.state.empty_dirs.append(str(kdir))
        self.state.save()
        first, *backups = self.lbs
        step(f"keepalived on {first.name}; waiting for it to take the VIP")
        self.start(self.daemon(first.name, "keepalived"))
        # The preferred master starts alone, so it (not a race) ends up holding the VIP.
        self._wait(
            lambda: self.vip_holders() == [first.name], timeout, "VIP on " + first.name, first.name
        )
        step(f"keepalived on {', '.join(b.name for b in backups)}")
        for backup in backups:
            self.start(self.daemon(backup.name, "keepalived"))
        if self.fortigate is not None:
            self._wait(self.fortigate_listens, timeout, f"{EMULATOR_COMMAND} to listen", "edge")
        gets = "the VIP answers the edge" if self.fortigate else "client gets 200"
        step(f"waiting for readiness: every backend UP in every HAProxy, {gets}")
        self.wait_ready(timeout)
        self.record_children()

    def _wait(
        self, check: Callable[[], bool], timeout: float, what: str, host: str | None = None
    ) -> float:
        """Poll ``check`` every 20 ms up to ``timeout``; returns the time it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                if check():
                    return time.monotonic() - t0
            except (OSError, ValueError) as exc:
                last_error = f" (last error: {exc})"
            if self.starting:
                self._check_daemons()
            time.sleep(POLL_S)
        raise LabError(
            f"timed out after {timeout:.0f}s waiting for {what}{last_error}{self._tails(host)}"
        )

    def _check_daemons(self) -> None:
        """Fail fast, with the daemon's log, when one exits while the lab starts."""
        daemons = {"devlog", "haproxy", "keepalived", "nginx", "uvicorn", EMULATOR_COMMAND}
        latest: dict[tuple[str, str], ProcRecord] = {}
        for p in self.state.processes:
            if p.name in daemons:
                latest[(p.host, p.name)] = p
        gone = [p for p in latest.values() if not procs.alive(p.pid, p.starttime)]
        if gone:
            p = gone[0]
            raise LabError(
                f"{p.name} on {p.host} exited during start-up{self._tails(p.host, p.name)}"
            )

    def _tails(self, host: str | None, name: str | None = None, lines: int = 12) -> str:
        if host is None:
            return ""
        out = []
        for log in sorted(self.logdir(host).glob("*.log")):
            if name and log.stem != name:
                continue
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"\n--- {log} ---\n" + "\n".join(text))
        return "".join(out)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until the lab serves through the public IP with every backend UP, and every
        LB's VRRP has started (past Keepalived's start-up delay), so either can take over.

        With the FortiGate emulator nothing forwards until the provider has configured it, so
        the 200 is asked of the VIP from the edge's DMZ leg instead.
        """
        self._wait(lambda: len(self.vip_holders()) == 1, timeout, "exactly one VIP holder")
        self._wait(self.vrrp_started, timeout, "VRRP started on every LB (start-up delay)")
        self.wait_backends(timeout)
        if self.fortigate is not None:
            return self._wait(
                lambda: self.vip_get()[0] == 200, timeout, "a 200 on the VIP from the edge"
            )
        return self._wait(
            lambda: self.client_get()[0] == 200, timeout, "a 200 through the public IP"
        )

    def fortigate_listens(self) -> bool:
        """True once the emulator accepts a connection from the client (its CA is made)."""
        if self.fortigate is None:
            return False
        with contextlib.closing(netns.socket_in(self.ns("client"))) as sock:
            sock.settimeout(1.0)
            sock.connect((str(self.fortigate.address.ip), self.fortigate.port))
        return self.fortigate.ca_file.is_file()

    def wait_backends(
        self, timeout: float = READY_TIMEOUT_S, up: Sequence[str] | None = None
    ) -> float:
        """Wait until every LB's HAProxy reports the ``up`` web nodes UP (default: all)."""
        want = set(up if up is not None else [w.name for w in self.webs])

        def check() -> bool:
            return all(
                {s for s, st in self.backend_states(lb.name).items() if st == "UP"} >= want
                for lb in self.lbs
                if self.procs(lb.name, "haproxy")
            )

        return self._wait(check, timeout, f"HAProxy to see {sorted(want)} UP")

    # ---- observation -----------------------------------------------------------------------

    def vrrp_started(self) -> bool:
        """True when every running Keepalived is older than VRRP's start-up delay: before
        that, a backup cannot take over (fast detection waits for BFD; see the template)."""
        delay = self.spec.vrrp.startup_delay_s
        return all(
            procs.age_s(p.starttime) >= delay
            for lb in self.lbs
            for p in self.procs(lb.name, "keepalived")
        )

    def vip_holders(self) -> list[str]:
        """LB hosts whose DMZ leg carries the VIP right now (one read of :meth:`vip_reader`)."""
        with self.vip_reader() as read:
            return read()

    def haproxy_command(self, host: str, command: str, timeout: float = 2.0) -> str:
        """Ask a host's HAProxy on its admin socket (a unix socket in the host's tree)."""
        path = self.tree(host) / PATHS.haproxy_socket.lstrip("/")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            for _ in range(1000):  # bounded: the stats of a few servers are a few KiB
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def backend_states(self, host: str) -> dict[str, str]:
        """{web node: UP/DOWN/...} as a host's HAProxy sees it."""
        lines = self.haproxy_command(host, "show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        col = {name: i for i, name in enumerate(header)}
        out = {}
        for line in lines[1:]:
            row = line.split(",")
            if (
                len(row) > col["status"]
                and row[0] == "web_nodes"
                and row[1] not in ("BACKEND", "FRONTEND")
            ):
                out[row[1]] = row[col["status"]].split(" ")[0]
        return out

    def client_get(self, path: str = "/", timeout: float = 1.0) -> tuple[int, str]:
        """One HTTPS request from the client namespace to the public URL (status, body)."""
        scheme = self.spec.plan.scheme
        port = 443 if scheme == "https" else 80
        return http_get(
            self.ns("client"),
            str(self.spec.public_address),
            port,
            path,
            tls=scheme == "https",
            timeout=timeout,
        )

    def vip_get(self, path: str = "/", timeout: float = 1.0) -> tuple[int, str]:
        """One request from the edge's DMZ leg straight to the VIP (no edge rule involved)."""
        scheme = self.spec.plan.scheme
        port = 443 if scheme == "https" else 80
        return http_get(
            self.ns("edge"), str(self.spec.vip_address), port, path, tls=scheme == "https",
            timeout=timeout,
        )  # fmt: skip

    def status(self) -> dict[str, Any]:
        """What runs, per host, and who holds the VIP."""
        hosts: dict[str, Any] = {}
        for host in self.spec.plan.hosts:
            entry: dict[str, Any] = {
                "namespace": self.ns(host.name),
                "namespace_exists": netns.exists(self.ns(host.name)),
                "processes": {p.name: p.pid for p in self.procs(host.name)},
            }
            if host.role is Role.LB and self.procs(host.name, "haproxy"):
                with contextlib.suppress(OSError):
                    entry["backends"] = self.backend_states(host.name)
            hosts[host.name] = entry
        holders: list[str] = []
        with contextlib.suppress(OSError, FileNotFoundError):
            holders = self.vip_holders()
        return {
            "stack": self.spec.stack,
            "lab": self.spec.lab_name,
            "public_url": self.spec.plan.public_url,
            "vip": str(self.spec.vip_address),
            "vip_holders": holders,
            "hosts": hosts,
            "run_dir": str(self.root),
            "fortigate_emulator": (
                {
                    "hostname": self.fortigate.hostname,
                    "ca_bundle": str(self.fortigate.ca_file),
                    "token_file": str(self.fortigate.token_file),
                }
                if self.fortigate is not None
                else None
            ),
        }

    # ---- faults ----------------------------------------------------------------------------

    def crash_host(self, host: str) -> float:
        """Hard failure: freeze every process of the host, then kill them. Returns the moment."""
        targets = [(p.pid, p.starttime) for p in self.procs(host)]
        t = time.time()
        left = procs.kill_tree(targets)
        if left:
            raise LabError(f"processes of {host} survived SIGKILL: {left}")
        return t

    def kill_daemon(self, host: str, name: str) -> float:
        """SIGKILL one daemon (and its children, frozen first). Returns the moment."""
        targets = [(p.pid, p.starttime) for p in self.procs(host, name)]
        targets += [(p.pid, p.starttime) for p in self.procs(host, f"{name}-child")]
        if not targets:
            raise LabError(f"{name} does not run on {host}")
        t = time.time()
        left = procs.kill_tree(targets)
        if left:
            raise LabError(f"{name} on {host} survived SIGKILL: {left}")
        return t

    def restore_host(self, host: str) -> float:
        """Start every daemon of a host that is not running. Returns the moment."""
        t = time.time()
        for d in self.daemons(self.spec.plan.host(host)):
            if not self.procs(host, d.name):
                self.start(d)
        return t

    def start_daemon(self, host: str, name: str) -> float:
        """Start one daemon again. Returns the moment."""
        t = time.time()
        self.start(self.daemon(host, name))
        return t

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """Every process of a host stopped for ``seconds``, then continued: a stall, not a death.

        Returns the moment and how long the processes were really stopped.
        """
        targets = [(p.pid, p.starttime) for p in self.procs(host)]
        if not targets:
            raise LabError(f"nothing of {host} runs")
        t = time.time()
        return t, procs.stall_tree(targets, seconds)

    def set_vrrp_partition(self, cut: bool) -> float:
        """Drop (or pass again) VRRP between the LBs at the switch: both may claim the VIP."""
        return self._switch_drop("hwl_drill", "ip protocol vrrp" if cut else None)

    def set_bfd_loss(self, cut: bool) -> float:
        """Drop (or pass again) BFD between the LBs at the switch; VRRP still passes."""
        return self._switch_drop("hwl_drill_bfd", "udp dport { 3784, 4784 }" if cut else None)

    def _switch_drop(self, table: str, match: str | None) -> float:
        """Drop what ``match`` selects at the switch in its own table, or (None) delete it."""
        script = (
            f"delete table bridge {table}\n"
            if match is None
            else (
                f"table bridge {table} {{\n"
                "  chain forward {\n"
                "    type filter hook forward priority filter; policy accept;\n"
                f"    ether type ip {match} drop\n"
                "  }\n"
                "}\n"
            )
        )
        t = time.time()
        subprocess.run(
            procs.nsexec_argv(["/usr/sbin/nft", "-f", "-"], net=self.topo.switch),
            input=script, text=True, capture_output=True, timeout=10, check=True,
        )  # fmt: skip
        return t

    def set_links(self, host: str, up: bool) -> float:
        """Pull (or plug back) every cable of a host at the switch."""
        t = time.time()
        topology.set_port_state(self.topo, self.topo.node(host), up)
        return t

    # ---- helpers started by drills ----------------------------------------------------------

    def spawn_helper(
        self, name: str, cmd: Sequence[str], host: str = "client", log: Path | None = None
    ) -> ProcRecord:
        """Start a probe/load/hog process (in ``host``'s namespace; ``machine``: the root one)."""
        net = None if host == "machine" else self.ns(host)
        argv = (
            procs.nsexec_argv(cmd, net=net, env={"PYTHONPATH": str(REPO_ROOT)})
            if net
            else list(cmd)
        )
        log = log or self.root / "helpers" / f"{name}.log"
        pid = procs.spawn(argv, log)
        record = ProcRecord(pid, procs.starttime(pid), host, name, list(argv), str(log))
        self.state.processes.append(record)
        self.state.save()
        return record

    # ---- the drill protocol (halab.target.protocol.DrillTarget; names and settings:
    # SpecDrillTarget)

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ProbeProcess:
        """Start :mod:`halab.target.probe` in the client namespace; returns once it sends."""

        def launch(cmd: Sequence[str], log: Path) -> procs.PidHandle:
            # Through the tracked spawn, so `lab down` ends the probe even after a crash of ours.
            record = self.spawn_helper("probe", cmd, "client", log)
            return procs.PidHandle(record.pid, record.starttime)

        return ProbeProcess.start(cfg, duration, self.root / "helpers", launch, error=LabError)

    @contextlib.contextmanager
    def vip_reader(self) -> Iterator[Callable[[], list[str]]]:
        """Persistent netlink sockets in both LB namespaces (about 1 ms per read of both)."""
        vip = str(self.spec.vip_address)
        sockets = [(lb.name, IPRoute(netns=self.ns(lb.name))) for lb in self.lbs]
        try:

            def read() -> list[str]:
                return [
                    name
                    for name, ipr in sockets
                    if any(m.get_attr("IFA_ADDRESS") == vip for m in ipr.get_addr(family=2))
                ]

            yield read
        finally:
            for _, ipr in sockets:
                ipr.close()

    @contextlib.contextmanager
    def cpu_hog(self, seconds: float) -> Iterator[None]:
        """One busy loop per core (bounded by ``seconds``), stopped by PID after the block."""
        hogs = [
            self.spawn_helper(f"hog-{i}", busy_loop_argv(seconds + 1.0), "machine")
            for i in range(os.cpu_count() or 1)
        ]
        try:
            yield
        finally:
            procs.kill_tree([(h.pid, h.starttime) for h in hogs])

    def vrrp_child_kills(self) -> int:
        """How often a Keepalived VRRP child was SIGKILLed by the kernel (RLIMIT_RTTIME)."""
        return self._keepalived_log_count("rlimit_rttime been exceeded")

    def bfd_expiries(self) -> int:
        """How often a BFD session between the LBs expired (a dead or stalled peer, or the
        start-up bounce: Keepalived 2.2.7 expires a session that has just come up when the peer
        still sends at its 1 s idle rate)."""
        return self._keepalived_log_count(") Expired after ")

    def _keepalived_log_count(self, needle: str) -> int:
        count = 0
        for lb in self.lbs:
            log = self.logdir(lb.name) / "keepalived.log"
            if log.exists():
                count += log.read_text(encoding="utf-8", errors="replace").count(needle)
        return count

    # ---- teardown --------------------------------------------------------------------------

    def down(self, progress: Callable[[str], None] = print) -> list[str]:
        """Remove everything the state file lists; returns problems (empty: all gone)."""
        with locked(self.spec.stack):
            return self._down(progress)

    def _down(self, progress: Callable[[str], None]) -> list[str]:
        problems: list[str] = []
        targets = [(p.pid, p.starttime) for p in self.state.processes]
        live = [t for t in targets if procs.alive(*t)]
        progress(f"stopping {len(live)} processes by PID")
        left = procs.kill_tree(live)
        if left:
            problems.append(f"still running: {left}")
        progress(f"removing {len(self.state.namespaces)} namespaces")
        for name in reversed(self.state.namespaces):
            try:
                topology.remove_namespace(name)
            except OSError as exc:
                problems.append(f"namespace {name}: {exc}")
        for d in self.state.dirs:
            shutil.rmtree(d, ignore_errors=True)
        for d in self.state.empty_dirs:
            with contextlib.suppress(OSError):
                os.rmdir(d)  # only while empty: files someone else put there stay
        self.state.path.unlink(missing_ok=True)
        if problems:
            progress("left behind: " + "; ".join(problems))
        return problems


def http_get(
    ns: str | None, ip: str, port: int, path: str, *, tls: bool, timeout: float
) -> tuple[int, str]:
    """One HTTP(S)/1.1 request with ``Connection: close`` from a namespace; (status, body)."""
    sock = netns.socket_in(ns)
    sock.settimeout(timeout)
    try:
        sock.connect((ip, port))
        conn: socket.socket = sock
        if tls:
            conn = unverified_context().wrap_socket(sock, server_hostname=ip)
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"no HTTP response from {ip}:{port}")
    return int(parts[1]), body.decode(errors="replace")


__all__ = ["LabError", "NamespaceLab", "ZoneName", "http_get", "lab_spec", "require_packages"]
