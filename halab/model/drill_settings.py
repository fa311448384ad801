"""The spec values that decide the drills' figures and waits, derived once from a spec.

:func:`drill_settings` is a pure function of a spec and of what the lab runs on
(:class:`TargetKind`); every drill target hands it to the drills, and every report keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from halab.model.spec import LabSpec


class TargetKind(StrEnum):
    """What a drill target's lab runs on."""

    NAMESPACES = "namespaces"
    VMS = "vms"


#: Adverts the VIP must stay on one LB before a drill starts (:func:`halab.drills.core.settle`):
#: right after a repair a preempting LB takes the VIP back within about an advert interval, and
#: that move must not land inside the next drill.
SETTLE_QUIET_ADVERTS = 3
#: Seconds of quiet on top of those adverts: the floor where adverts are tens of milliseconds.
SETTLE_QUIET_EXTRA_S = 0.3
#: Adverts after the slowest takeover until a VIP move is surely over: the new master takes the
#: address and announces it once its timer has run out.
VIP_MOVED_EXTRA_ADVERTS = 1


@dataclass(frozen=True)
class DrillSettings:
    """The spec values that decide the drills' figures and waits, each timing derived once
    (by the spec's sections) and kept in every report.

    Built by :func:`drill_settings` from a spec; the drills, the VM check and the e2e run read
    its attributes, never a value of their own for what the spec configures.
    """

    stack: str
    target: TargetKind
    #: libvirt's domain type on VMs (``kvm``, ``qemu``); None in namespaces.
    domain_type: str | None
    vrrp_version: int
    vrrp_advert_interval_ms: int
    vrrp_advert_s: float
    vrrp_preempt: bool
    vrrp_realtime: bool
    #: One per LB, in config order.
    vrrp_priorities: tuple[int, ...]
    vrrp_fast_detection: bool
    #: The master-down timer's adverts, resolved (never 0).
    vrrp_down_timer_adverts: int
    #: How long a backup takes to notice a silent master (:attr:`VrrpSpec.detection_s`).
    vrrp_detection_s: float
    #: The longest a backup takes to take over from a dead master
    #: (:attr:`VrrpSpec.takeover_s`).
    vrrp_takeover_s: float
    vrrp_startup_delay_s: float
    #: BFD's timers, with fast detection only (no BFD runs without it).
    bfd_interval_ms: int | None
    bfd_multiplier: int | None
    health_check_interval_ms: int
    health_check_fall: int
    health_check_rise: int
    #: The longest HAProxy takes to mark a dead web node down (:attr:`HaproxySpec.node_down_s`).
    haproxy_node_down_s: float
    haproxy_retries: int
    haproxy_redispatch: bool
    haproxy_retry_on: str
    haproxy_timeout_connect_ms: int
    haproxy_timeout_connect_s: float
    #: The pause before HAProxy retries a node that refused
    #: (:attr:`HaproxySpec.retry_turnaround_s`).
    haproxy_retry_turnaround_s: float
    #: The longest a request waits while every node refuses
    #: (:attr:`HaproxySpec.refused_request_s`).
    haproxy_refused_request_s: float
    web_nodes: int

    @property
    def settle_quiet_s(self) -> float:
        """How long the VIP must stay put before a drill starts."""
        return SETTLE_QUIET_ADVERTS * self.vrrp_advert_s + SETTLE_QUIET_EXTRA_S

    @property
    def vip_moved_s(self) -> float:
        """From a master's death (or a preempting LB's return) until the VIP has surely moved."""
        return self.vrrp_takeover_s + VIP_MOVED_EXTRA_ADVERTS * self.vrrp_advert_s


def drill_settings(spec: LabSpec, kind: TargetKind) -> DrillSettings:
    """The spec values that decide the drills' figures and waits, for a lab on ``kind``."""
    vrrp, haproxy = spec.vrrp, spec.haproxy
    fast = vrrp.fast_detection
    return DrillSettings(
        stack=spec.stack,
        target=kind,
        domain_type=spec.vm.domain_type.value if kind is TargetKind.VMS else None,
        vrrp_version=vrrp.version,
        vrrp_advert_interval_ms=vrrp.advert_interval_ms,
        vrrp_advert_s=vrrp.advert_s,
        vrrp_preempt=vrrp.preempt,
        vrrp_realtime=vrrp.realtime,
        vrrp_priorities=tuple(spec.lb_priorities),
        vrrp_fast_detection=fast,
        vrrp_down_timer_adverts=vrrp.master_down_adverts,
        vrrp_detection_s=vrrp.detection_s,
        vrrp_takeover_s=vrrp.takeover_s,
        vrrp_startup_delay_s=vrrp.startup_delay_s,
        bfd_interval_ms=vrrp.bfd_interval_ms if fast else None,
        bfd_multiplier=vrrp.bfd_multiplier if fast else None,
        health_check_interval_ms=haproxy.health_check_interval_ms,
        health_check_fall=haproxy.health_check_fall,
        health_check_rise=haproxy.health_check_rise,
        haproxy_node_down_s=haproxy.node_down_s,
        haproxy_retries=haproxy.retries,
        haproxy_redispatch=haproxy.redispatch,
        haproxy_retry_on=haproxy.retry_on,
        haproxy_timeout_connect_ms=haproxy.timeout_connect_ms,
        haproxy_timeout_connect_s=haproxy.timeout_connect_s,
        haproxy_retry_turnaround_s=haproxy.retry_turnaround_s,
        haproxy_refused_request_s=haproxy.refused_request_s,
        web_nodes=len(spec.web_hosts),
    )
