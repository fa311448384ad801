"""Every registered drill against the scripted lab: with the lab behaving, the drill passes
with the figures the script implies; with one part of it misbehaving, the drill fails on the
check that should catch it, and on no other.

The probe is the fastest one (a request every 100 ms), the lab answers in 15 ms; every time is
the script's own, so nothing here waits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from halab.drills.core import DrillResult
from halab.drills.lb import haproxy_death, master_returns
from halab.drills.load import load_run
from halab.drills.network import bfd_loss, partition
from halab.drills.registry import ALL, EXTRA, REGISTRY, run_drills
from halab.drills.web import ANSWER_MARGIN_S, all_webs_down, app_crash, round_robin
from tests.halab.drills.scripted import (
    FASTEST,
    ScriptClock,
    ScriptedTarget,
    baseline,
    drill_run,
    scripted_settings,
)

#: The lab's pace: 15 ms answers leave the probe at its 100 ms interval.
LATENCY = 0.015
MEASURED = baseline(0.02)
INTERVAL = MEASURED.paced_probe(FASTEST).interval
#: From the master's crash until the backup holds the VIP.
VIP_MOVES_AFTER = 0.35


def _target(
    clock: ScriptClock, config: dict[str, Any] | None = None, **script: Any
) -> ScriptedTarget:
    """The scripted lab with ``config`` (stack config keys), behaving as ``script`` says."""
    return ScriptedTarget(
        scripted_settings(**(config or {})),
        clock=clock,
        normal_latency=LATENCY,
        **{"vip_moves_after": VIP_MOVES_AFTER, **script},
    )


def _failed(result: DrillResult) -> list[str]:
    """The checks that failed, in the drill's order."""
    return [name for name, ok in result.checks.items() if not ok]


def test_the_probe_is_the_fastest() -> None:
    assert INTERVAL == FASTEST.interval == 0.1


# ---- a well-behaved lab: every drill passes ---------------------------------------------------


def test_round_robin_alternates_every_answer(clock: ScriptClock) -> None:
    target = _target(clock)
    result = round_robin(drill_run(target, MEASURED))
    assert result.passed, result.checks
    assert target.probes[-1].sequential and target.probes[-1].max_requests == 20
    assert result.figures["backends"] == {"web-1": 10, "web-2": 10}
    assert (result.figures["alternating_pairs"], result.figures["pairs"]) == (19, 19)
    assert result.figures["alternation"] == 1.0


def test_app_crash_is_hidden_by_haproxys_retries(clock: ScriptClock) -> None:
    target = _target(clock)
    result = app_crash(drill_run(target, MEASURED))
    assert result.passed, result.checks
    # HAProxy sends the dead app's 502s on to the other node until it drops the node.
    assert result.figures["failed"] == 0
    assert result.figures["web"] == "web-1"
    # The node answers again once its app is back.
    assert set(result.figures["backends"]) == {"web-1", "web-2"}
    (fault,) = [f for f in target.faults if f.what == "uvicorn"]
    assert fault.host == "web-1" and fault.end is not None
    # Until HAProxy dropped the node, and a second more.
    assert fault.end - fault.start == pytest.approx(target.settings.haproxy_node_down_s + 1.0)


def test_all_webs_down_answers_a_503_at_once(clock: ScriptClock) -> None:
    target = _target(clock, no_web_503_s=0.2)
    result = all_webs_down(drill_run(target, MEASURED))
    assert result.passed, result.checks
    # The first request after the fault gets HAProxy's 503 after its 200 ms of retries.
    assert 0.2 <= result.figures["time_to_503_s"] <= 0.2 + INTERVAL
    assert result.figures["max_latency_s"] == 0.2
    assert result.figures["statuses"] == {"503": result.figures["requests"]}
    assert result.figures["slower_than_2000ms"] == 0
    # The probe was patient: a hang would show as its real length, up to twice the slowest
    # answer HAProxy's retries allow.
    slowest = target.settings.haproxy_refused_request_s + MEASURED.p90_s + ANSWER_MARGIN_S
    assert target.probes[-1].total_timeout == pytest.approx(2 * slowest)


def test_haproxy_death_moves_the_vip_by_the_tracked_process(clock: ScriptClock) -> None:
    target = _target(clock, haproxy_tracked_after=0.2)
    result = haproxy_death(drill_run(target, MEASURED))
    assert result.passed, result.checks
    assert result.figures["master"] == "lb-1"
    assert result.figures["vip_move_s"] == pytest.approx(0.2)
    # Refused while the VIP sat on the LB without HAProxy: two requests of 100 ms.
    assert result.figures["outcomes"]["refused"] == 2
    assert result.figures["outage_s"] == pytest.approx(0.2, abs=INTERVAL)
    assert result.figures["failed_after_repair"] == 0


@pytest.mark.parametrize(
    ("preempt", "holder_after", "moves"), [(False, ["lb-2"], 0), (True, ["lb-1"], 1)]
)
def test_master_returns_takes_the_vip_back_only_with_preempt(
    clock: ScriptClock, preempt: bool, holder_after: list[str], moves: int
) -> None:
    target = _target(clock, {"vrrpPreempt": preempt})
    # No earlier drill crashed an LB: this one crashes the master first.
    run = drill_run(target, MEASURED)
    result = master_returns(run)
    assert result.passed, result.checks
    assert result.figures["holder_before"] == ["lb-2"]
    assert result.figures["holder_after"] == holder_after
    assert result.figures["vip_moves"] == moves
    assert result.figures["failed"] == 0
    assert run.crashed is None


def test_partition_heals_to_the_higher_priority(clock: ScriptClock) -> None:
    target = _target(clock, split_heals_after=0.2)
    result = partition(drill_run(target, MEASURED))
    assert result.passed, result.checks
    assert result.figures["holder_before"] == ["lb-1"]
    # The backup's master-down timer ran out during the cut: both claimed the VIP.
    assert result.figures["both_claimed_vip"] is True
    assert result.figures["single_owner_after_heal_s"] == pytest.approx(0.2)
    assert result.figures["owner_after_heal"] == ["lb-1"]
    assert result.figures["failed_after_heal"] == 0


def test_bfd_loss_leaves_the_owner_alone(clock: ScriptClock) -> None:
    target = _target(clock, {"vrrpFastDetection": True})
    result = bfd_loss(drill_run(target, MEASURED))
    assert result.passed, result.checks
    assert result.figures["both_claimed_vip"] is False
    assert result.figures["vip_moves_during_loss"] == result.figures["vip_moves_after"] == 0
    assert result.figures["holders_after"] == ["lb-1"]


def test_load_run_keeps_the_vip_for_a_minute(clock: ScriptClock) -> None:
    target = _target(clock)
    result = load_run(drill_run(target, MEASURED, load_seconds=60.0))
    assert result.passed, result.checks
    # A request every 100 ms for the hog's minute.
    assert result.figures["requests"] == 600
    assert result.figures["vip_moves"] == 0
    assert result.figures["holders_at_end"] == ["lb-1"]


def test_a_full_run_passes_every_drill_in_order(clock: ScriptClock) -> None:
    """Every drill, each from a settled pair, as ``lab drill`` runs them: ``master-returns``
    brings back the LB ``lb-hard-failure`` crashed, and nothing is left crashed."""
    target = _target(clock)
    names = [*ALL, *EXTRA]
    results = run_drills(
        target, "scripted", names, probe=MEASURED.paced_probe(FASTEST), seed=8, load_seconds=10.0
    )
    assert [r.name for r in results] == names
    assert {r.name: _failed(r) for r in results} == {name: [] for name in names}
    by_name = {r.name: r for r in results}
    # haproxy-death left the VIP on lb-2 (nopreempt): lb-hard-failure crashed that one, and
    # master-returns brought it back beside the new master.
    hard, returns = by_name["lb-hard-failure"], by_name["master-returns"]
    assert (hard.figures["master"], hard.figures["new_master"]) == ("lb-2", "lb-1")
    crashed = [f for f in target.faults if f.what == "host" and f.host in target.lb_names]
    assert [f.host for f in crashed] == ["lb-2"]
    assert returns.figures["holder_before"] == returns.figures["holder_after"] == ["lb-1"]
    assert all(f.end is not None for f in target.faults)


# ---- a misbehaving lab: the drill fails on the check that catches it -------------------------


@dataclass(frozen=True)
class Misbehaviour:
    """One part of the lab gone wrong, and the checks (by the start of their names) that must
    fail on it: those, and no others."""

    drill: str
    script: dict[str, Any]
    failed: list[str]
    config: dict[str, Any] = field(default_factory=dict)


MISBEHAVIOURS = {
    # HAProxy hands each node two requests in a row: every node answers, balanced, but in pairs.
    "round-robin pairs": Misbehaviour(
        "round-robin", {"answers_per_turn": 2}, ["alternation >= 0.9"]
    ),
    # The health check reaches only nginx, so the node is never dropped, and the 502s of the
    # dead app reach the client.
    "app-crash 502s": Misbehaviour(
        "app-crash", {"node_down_after": math.inf, "retries_502": False}, ["failed requests <= 5"]
    ),
    # With every node dead, requests hang until HAProxy's checks drop the nodes (0.3 s).
    "all-webs-down hang": Misbehaviour(
        "all-webs-down", {"no_web_503_s": math.inf}, ["no answer slower than"]
    ),
    # The same with checks every second: the first 503 comes only when they drop the nodes (3 s).
    "all-webs-down no 503": Misbehaviour(
        "all-webs-down",
        {"no_web_503_s": math.inf},
        ["a 503 within", "no answer slower than"],
        {"healthCheckIntervalMs": 1000},
    ),
    # HAProxy never drops the dead node: half the requests keep waiting out the connect timeout.
    "web-hard-failure never dropped": Misbehaviour(
        "web-hard-failure", {"node_down_after": math.inf}, ["fast again by"]
    ),
    # keepalived does not track HAProxy: the VIP stays on an LB that refuses every request.
    "haproxy-death VIP stays": Misbehaviour(
        "haproxy-death",
        {"haproxy_tracked_after": None},
        ["VIP moved to one other LB", "client recovered", "outage < 2.0s"],
    ),
    # The backup never takes over: the VIP stays on the dead master.
    "lb-hard-failure VIP stays": Misbehaviour(
        "lb-hard-failure",
        {"vip_moves_after": None},
        ["VIP moved to one other LB", "client recovered", "outage < 2.0s"],
    ),
    # The returning master claims the VIP beside the holder, and both keep it.
    "master-returns two masters": Misbehaviour(
        "master-returns", {"two_masters_on_return": True}, ["VIP on ['lb-2'] (nopreempt)"]
    ),
    # VRRP passes again, but neither LB yields.
    "partition two masters": Misbehaviour(
        "partition", {"split_heals_after": None}, ["exactly one VIP owner within 2.0s"]
    ),
    # One owner at once, but the edge keeps sending to the LB that yielded for 3 s.
    "partition stale ARP": Misbehaviour(
        "partition", {"stale_arp_s": 3.0}, ["client served again within 2.0s"]
    ),
    # The fast timers flap under load: the VIP goes to the backup 20 s into the minute.
    "load-run flap": Misbehaviour("load-run", {"flaps_after": 20.0}, ["no VIP move"]),
    # The lab notices a 10 ms silence although its settings say 300 ms: a 50 ms stall moves it.
    "lb-stall faster than configured": Misbehaviour(
        "lb-stall", {"real_detection_s": 0.01}, ["no VIP move when the stall is shorter"]
    ),
    # Without BFD both LBs claim the VIP, and keep it after BFD is back.
    "bfd-loss two masters": Misbehaviour(
        "bfd-loss", {"bfd_loss_splits": True}, ["one VIP owner after"], {"vrrpFastDetection": True}
    ),
}


def test_every_registered_drill_has_a_misbehaving_lab() -> None:
    assert {m.drill for m in MISBEHAVIOURS.values()} == set(REGISTRY)


@pytest.mark.parametrize("case", MISBEHAVIOURS)
def test_a_misbehaving_lab_fails_the_drill_on_the_right_check(
    clock: ScriptClock, case: str
) -> None:
    bad = MISBEHAVIOURS[case]
    target = _target(clock, bad.config, **bad.script)
    result = REGISTRY[bad.drill].run(drill_run(target, MEASURED))
    failed = _failed(result)
    assert len(failed) == len(bad.failed), result.checks
    for name, start in zip(failed, bad.failed, strict=True):
        assert name.startswith(start), result.checks
    # What the client saw before the fault was fine: the drill blames the fault, not the lab.
    assert result.checks.get("client healthy before the fault", True)
