"""The drill protocol: what a drill needs from a lab, whatever the lab runs on.

Two targets implement it: the namespace lab (:class:`halab.nslab.lab.NamespaceLab`) and a
deployed lab of VMs (:class:`halab.vmlab.lab.VmLab`). What both read off the spec is
:class:`SpecDrillTarget`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import ClassVar, Protocol

from halab.model.drill_settings import DrillSettings, TargetKind, drill_settings
from halab.model.roles import Role
from halab.model.spec import LabSpec
from halab.target.probe import ProbeConfig, Sample


class ProbeRun(Protocol):
    """A probe started by a target; :meth:`stop` ends it and returns every sample.

    Both targets return a :class:`halab.target.probe_process.ProbeProcess`; the drills need
    only these two methods.
    """

    def wait(self, timeout: float) -> None:
        """Wait until the probe ends by itself (its request count), ``timeout`` at most."""
        ...

    def stop(self) -> list[Sample]:
        """End the probe (or wait for its end) and collect its samples."""
        ...


class DrillTarget(Protocol):
    """What a drill needs from a lab, whatever the lab runs on."""

    @property
    def lb_names(self) -> list[str]:
        """The LBs (two or more), preferred master first, then by falling priority."""
        ...

    @property
    def web_names(self) -> list[str]:
        """The web nodes."""
        ...

    @property
    def public_url(self) -> str:
        """What the client requests."""
        ...

    @property
    def settings(self) -> DrillSettings:
        """The knobs that decide the figures (advert interval, checks, retries...)."""
        ...

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ProbeRun:
        """Start the probe near the client (returns once it sends)."""
        ...

    def vip_reader(self) -> AbstractContextManager[Callable[[], list[str]]]:
        """A cheap repeated reader of the VIP holders, owned by the calling thread."""
        ...

    def crash_host(self, host: str) -> float:
        """Freeze then kill every process of a host; returns the injection time."""
        ...

    def restore_host(self, host: str) -> float:
        """Start a host's daemons again."""
        ...

    def kill_daemon(self, host: str, name: str) -> float:
        """SIGKILL one daemon (``haproxy``, ``uvicorn``...)."""
        ...

    def start_daemon(self, host: str, name: str) -> float:
        """Start one daemon again."""
        ...

    def wait_backends(self, timeout: float = 30.0, up: Sequence[str] | None = None) -> float:
        """Wait until the LBs see the web nodes UP."""
        ...

    def set_vrrp_partition(self, cut: bool) -> float:
        """Cut or heal VRRP between the LBs."""
        ...

    def cpu_hog(self, seconds: float) -> AbstractContextManager[None]:
        """Keep every core busy for the block (bounded by ``seconds``)."""
        ...

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """Stop a host for ``seconds``, then let it go on; the moment and the real stop time."""
        ...

    def set_bfd_loss(self, cut: bool) -> float:
        """Drop or pass BFD between the LBs (VRRP still passes)."""
        ...


class SpecDrillTarget:
    """The parts of :class:`DrillTarget` that every target (namespaces, VMs) reads off its spec."""

    #: What the lab runs on (kept in every report).
    KIND: ClassVar[TargetKind]
    spec: LabSpec

    @property
    def lb_names(self) -> list[str]:
        """The LBs, preferred master (highest VRRP priority) first, then by falling priority."""
        return [h.name for h in self.spec.plan.lbs_by_priority]

    @property
    def web_names(self) -> list[str]:
        """The web nodes."""
        return [h.name for h in self.spec.plan.hosts_with_role(Role.WEB)]

    @property
    def public_url(self) -> str:
        """The URL clients use: through the edge when there is one."""
        return self.spec.plan.public_url

    @property
    def settings(self) -> DrillSettings:
        """The spec values that decide the drills' figures."""
        return drill_settings(self.spec, self.KIND)
