"""The drills that run on VMs, against a scripted target: their logic and their bounds, sized
from a measured baseline as on a slow machine, without root or a lab."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pytest

from halab.drills.core import Bounds, settle
from halab.drills.lb import STALL_S, lb_hard_failure, lb_stall
from halab.drills.web import web_hard_failure
from tests.halab.drills.scripted import (
    ScriptClock,
    ScriptedTarget,
    baseline,
    drill_run,
    scripted_settings,
)


def test_lb_hard_failure_moves_the_vip_and_the_client_recovers_within_the_bound(
    clock: ScriptClock,
) -> None:
    target = ScriptedTarget(
        scripted_settings(), clock=clock, normal_latency=0.05, vip_moves_after=0.35
    )
    run = drill_run(target, baseline(0.06), Bounds(max_lb_outage_s=0.35 + 2.0 + 2 * 0.24 + 0.06))
    result = lb_hard_failure(run)
    assert result.passed, result.checks
    assert result.figures["new_master"] == "lb-2" == result.figures["expected_new_master"]
    assert result.figures["vip_move_s"] == pytest.approx(0.35, abs=0.15)
    # The probe the drill used is the one the baseline sized: 4 x 60 ms, not 100 ms.
    assert target.probes[-1].interval == pytest.approx(0.24)
    assert run.crashed == "lb-1"
    # The report keeps the settings the drill read, as plain data.
    assert result.settings is target.settings
    data = json.loads(json.dumps(result.to_json()))
    assert data["settings"] == json.loads(json.dumps(asdict(target.settings)))
    assert data["settings"]["vrrp_takeover_s"] == 0.4
    assert data["settings"]["target"] == "namespaces"


def test_web_hard_failure_judges_slow_by_the_labs_own_pace(clock: ScriptClock) -> None:
    # A slow lab: every answer takes 150 ms, more than half of a 200 ms connect timeout. A fixed
    # threshold of half the timeout would call every request slow and fail a lab that recovered.
    # HAProxy drops a node after 350 ms x (1 + 1) = 0.7 s.
    settings = scripted_settings(
        haproxyTimeoutConnectMs=200, healthCheckIntervalMs=350, healthCheckFall=1
    )
    assert (settings.haproxy_node_down_s, settings.haproxy_timeout_connect_s) == (0.7, 0.2)
    target = ScriptedTarget(settings, clock=clock, normal_latency=0.15, vip_moves_after=0.0)
    run = drill_run(target, baseline(0.15))
    result = web_hard_failure(run)
    assert all(s.latency > 0.1 for s in result.samples)
    assert result.passed, result.checks
    assert result.figures["slower_than_250ms"] > 0  # those HAProxy still sent to the dead node
    assert result.figures["answered_at_the_end_by"] == ["web-1"]
    # The judged end holds at least two of the probe's requests, after HAProxy dropped the node.
    (fast_again,) = [name for name in result.checks if name.startswith("fast again")]
    judged = re.search(r"the last ([0-9.]+)s", fast_again)
    assert judged is not None and float(judged[1]) >= 2 * run.probe.interval
    assert result.figures["detection_s"] == 0.7


def test_settle_waits_for_the_quiet_time_of_the_configured_adverts(clock: ScriptClock) -> None:
    target = ScriptedTarget(
        scripted_settings(), clock=clock, normal_latency=0.05, vip_moves_after=0.35
    )
    # Three adverts of 100 ms, and 0.3 s more.
    assert target.settings.settle_quiet_s == pytest.approx(0.6)
    started = clock.monotonic()
    assert settle(target, timeout=5.0) == ["lb-1"]
    assert clock.monotonic() - started >= target.settings.settle_quiet_s


@pytest.mark.parametrize(
    ("fast", "detection", "moves"),
    [
        # BFD's 10 ms x 3: a 50 ms stall is longer, and the VIP moves (what fast detection costs).
        (True, 0.03, 1),
        # Three adverts of 100 ms: the same stall goes unnoticed.
        (False, 0.3, 0),
    ],
)
def test_lb_stall_is_judged_against_the_detection_of_the_configured_timers(
    clock: ScriptClock, fast: bool, detection: float, moves: int
) -> None:
    target = ScriptedTarget(
        scripted_settings(vrrpFastDetection=fast),
        clock=clock,
        normal_latency=0.05,
        vip_moves_after=0.35,
    )
    result = lb_stall(drill_run(target, baseline(0.06)))
    assert result.figures["detection_s"] == detection
    assert result.figures["vip_moves"] == moves
    assert result.figures["stopped_s"] == STALL_S
    assert result.passed, result.checks
