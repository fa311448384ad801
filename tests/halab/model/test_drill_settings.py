"""The timings the drills read: derived once by the spec's sections, carried by
:class:`halab.model.drill_settings.DrillSettings`, the same for every stack file as the drills' own
formulas gave before they moved there."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from halab.drills.baseline import Baseline
from halab.e2e.check import vm_bounds
from halab.e2e.run import serving_bound_s
from halab.model.drill_settings import DrillSettings, TargetKind, drill_settings
from halab.model.sections import VRRP_STARTUP_DELAY_S
from halab.model.stackconfig import REPO_ROOT, read_stack
from halab.target.probe import ProbeConfig
from halab.vmlab.lab import VmLab
from tests.halab.drills.scripted import scripted_settings

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                for p in REPO_ROOT.glob("Pulumi.*.yaml"))  # fmt: skip

#: Per stack file: advert, detection, takeover, HAProxy's time to drop a node, its connect
#: timeout (seconds).
EXPECTED = {
    # 40 ms adverts (the default), 3 of them in the master-down timer, one more for the skew;
    # checks every 500 ms, fall 2: (2 + 1) x 0.5 s.
    "dev": (0.04, 0.12, 0.16, 1.5, 1.0),
    # 1 s adverts; checks every 2 s, fall 3: (3 + 1) x 2 s.
    "e2e": (1.0, 3.0, 4.0, 8.0, 1.0),
    "local": (1.0, 3.0, 4.0, 8.0, 1.0),
    "staging": (0.1, 0.3, 0.4, 1.5, 1.0),
    # VRRPv2's whole seconds, HAProxy's check defaults and a 5 s connect timeout.
    "tutorial": (1.0, 3.0, 4.0, 8.0, 5.0),
}


def _settings(stack: str, kind: TargetKind = TargetKind.NAMESPACES, **config: Any) -> DrillSettings:
    """The stack file's settings, with ``config`` (config keys) over its values."""
    stack_config = read_stack(stack)
    with_config = replace(stack_config, values={**stack_config.values, **config})
    return drill_settings(with_config.spec(offline=True), kind)


def test_every_stack_file_has_its_expected_timings() -> None:
    assert sorted(EXPECTED) == STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_files_timings(stack: str) -> None:
    s = _settings(stack)
    advert, detection, takeover, node_down, connect = EXPECTED[stack]
    assert s.vrrp_advert_s == advert
    assert s.vrrp_detection_s == detection
    assert s.vrrp_takeover_s == takeover
    assert s.haproxy_node_down_s == node_down
    assert s.haproxy_timeout_connect_s == connect
    # No stack file turns fast detection on: no BFD, no start-up delay.
    assert not s.vrrp_fast_detection
    assert (s.bfd_interval_ms, s.bfd_multiplier, s.vrrp_startup_delay_s) == (None, None, 0.0)


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_keeps_the_bounds_the_drills_computed_before(stack: str) -> None:
    """The formulas the drills had of their own, each on the raw config values."""
    s = _settings(stack)
    advert = s.vrrp_advert_interval_ms / 1000
    assert s.settle_quiet_s == pytest.approx(3 * advert + 0.3)
    # crash_the_master, haproxy-death (preempt) and master-returns waited 5 adverts.
    assert s.vip_moved_s == pytest.approx(5 * advert)
    # partition cut VRRP for 4 adverts and a second more (3 s at least).
    assert max(3.0, s.vrrp_takeover_s + 1.0) == pytest.approx(max(3.0, 4 * advert + 1.0))
    # The VM check's takeover: the detection time plus one advert of skew.
    assert s.vrrp_takeover_s == pytest.approx(s.vrrp_detection_s + advert)
    # HAProxy's time to drop a node: interval x (fall + 1).
    fall = s.health_check_fall + 1
    assert s.haproxy_node_down_s == pytest.approx(s.health_check_interval_ms * fall / 1000)


@pytest.mark.parametrize("stack", [s for s in STACKS if not _settings(s).vrrp_preempt])
def test_fast_detection_on_and_off(stack: str) -> None:
    # (Fast detection is refused with preempt: the tutorial's stack cannot have it.)
    off = _settings(stack, vrrpFastDetection=False)
    on = _settings(stack, vrrpFastDetection=True)
    advert = off.vrrp_advert_s
    # Off: the standard 3-advert timer decides both.
    assert off.vrrp_down_timer_adverts == 3
    assert off.vrrp_detection_s == pytest.approx(3 * advert)
    assert off.vrrp_takeover_s == pytest.approx(4 * advert)
    assert (off.bfd_interval_ms, off.bfd_multiplier, off.vrrp_startup_delay_s) == (None, None, 0)
    # On: BFD's 10 ms x 3 sees the silent master; the one-advert timer, with its skew, still
    # decides the takeover (BFD only lifts the backup's priority).
    assert on.vrrp_down_timer_adverts == 1
    assert on.vrrp_detection_s == 0.03
    assert on.vrrp_takeover_s == pytest.approx(2 * advert)
    assert (on.bfd_interval_ms, on.bfd_multiplier) == (10, 3)
    assert on.vrrp_startup_delay_s == VRRP_STARTUP_DELAY_S


def test_fast_detection_with_a_longer_timer_takes_over_when_the_timer_runs_out() -> None:
    s = _settings("dev", vrrpFastDetection=True, vrrpDownTimerAdverts=3, bfdIntervalMs=5)
    assert s.vrrp_detection_s == 0.015
    # Three adverts and the skew: not BFD's 15 ms and an advert.
    assert s.vrrp_takeover_s == 0.16


def test_the_section_derives_the_values_the_settings_carry() -> None:
    spec = read_stack("e2e").spec(offline=True)
    s = drill_settings(spec, TargetKind.VMS)
    assert s.vrrp_advert_s == spec.vrrp.advert_s
    assert s.vrrp_detection_s == spec.vrrp.detection_s
    assert s.vrrp_takeover_s == spec.vrrp.takeover_s
    assert s.haproxy_node_down_s == spec.haproxy.node_down_s
    assert spec.vrrp.bfd_detection_s == 0.03  # configured, though only fast detection runs it


def test_the_target_kind_and_the_domain_type() -> None:
    assert _settings("e2e", TargetKind.VMS).domain_type == "qemu"
    assert _settings("e2e", TargetKind.VMS).target == "vms"
    assert _settings("e2e").domain_type is None
    assert _settings("e2e").target == "namespaces"


def test_a_report_has_every_key_it_had_and_the_derived_timings() -> None:
    data = json.loads(json.dumps(asdict(_settings("staging", TargetKind.VMS))))
    before = {
        "stack", "vrrp_version", "vrrp_advert_interval_ms", "vrrp_preempt", "vrrp_realtime",
        "vrrp_priorities", "vrrp_fast_detection", "vrrp_down_timer_adverts",
        "vrrp_startup_delay_s", "bfd_interval_ms", "bfd_multiplier", "health_check_interval_ms",
        "health_check_fall", "health_check_rise", "haproxy_node_down_s", "haproxy_retries",
        "haproxy_redispatch", "haproxy_retry_on", "haproxy_timeout_connect_ms", "web_nodes",
        "target", "domain_type",
    }  # fmt: skip
    assert before <= set(data)
    assert data["vrrp_priorities"] == [150, 100, 50]
    assert data["vrrp_takeover_s"] == 0.4
    assert data["target"] == "vms"


def test_the_vm_checks_outage_bound_is_the_takeover_plus_the_probe(tmp_path: Path) -> None:
    lab = VmLab(read_stack("e2e").spec(offline=True), ssh_key=None, workdir=tmp_path)
    probe = ProbeConfig("https://192.0.2.10/", interval=0.25, total_timeout=2.0)
    baseline = Baseline(requests=20, failed=0, p50_s=0.05, p90_s=0.06, max_s=0.07)
    # 4 s of takeover (3 adverts of 1 s and the skew), a timeout, two intervals, the slow end.
    assert vm_bounds(lab, probe, baseline).max_lb_outage_s == 4.0 + 2.0 + 0.5 + 0.06


def test_the_serving_bound_reads_haproxys_time_to_drop_a_node() -> None:
    probe = ProbeConfig("https://192.0.2.10/", interval=0.5, total_timeout=2.0)
    assert serving_bound_s(scripted_settings(), probe) == 0.3 + 2.0 + 0.5


@pytest.mark.parametrize(
    ("connect_ms", "retries", "turnaround", "refused"),
    [
        # HAProxy pauses min(timeout connect, 1 s) before it retries a node that refused.
        (1000, 2, 1.0, 2.0),
        (400, 3, 0.4, 1.2),
        (2000, 1, 1.0, 1.0),
        (5000, 0, 1.0, 0.0),
    ],
)
def test_what_a_refused_request_may_cost(
    connect_ms: int, retries: int, turnaround: float, refused: float
) -> None:
    s = _settings("dev", haproxyTimeoutConnectMs=connect_ms, haproxyRetries=retries)
    assert s.haproxy_retry_turnaround_s == turnaround
    assert s.haproxy_refused_request_s == pytest.approx(refused)
