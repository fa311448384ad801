"""Three LBs in one VRRP group (the staging stack: config only), in network namespaces.

The same drills as the pair's, judged by their own checks: the VIP goes to one of the backups
when the master dies, stays where it is when the old master returns (nopreempt), and a
partition that lets all three claim it heals to one owner. Then the same group with fast
detection: BFD from every LB to each of its two peers, and the drills that issue 15 asks of it.

Not ``haproxy-death``: Keepalived sees HAProxy die through the kernel's process events, which
the kernel sends only to listeners in the initial PID namespace, and ``make fresh-test`` runs
the tests in a PID namespace of its own (in it the VIP never moved, in two labs of two runs).
The benchmark, ``make lab`` and the VMs run it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from halab.drills import registry, report
from halab.drills.core import DrillResult
from halab.drills.probe import ProbeConfig
from halab.lab.lab import Lab
from halab.stackconfig import REPO_ROOT
from tests.halab.lab.running import running_lab

pytestmark = pytest.mark.lab

STACK = "staging"
REPORTS = REPO_ROOT / "reports" / "test-lab-three-lbs"


@pytest.fixture(scope="module", params=[False, True], ids=["standard", "fast-detection"])
def trio(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """staging's lab (3 LBs, 3 web nodes), with fast detection off and then on."""
    # Fast detection needs BFD's detection (10 ms x 3) below one advert: staging's 100 ms is.
    with running_lab(STACK, {"vrrpFastDetection": request.param}) as lab:
        yield lab


def _drills(lab: Lab, *names: str) -> list[DrillResult]:
    results = registry.run_drills(lab, STACK, names, probe=ProbeConfig(url=lab.public_url))
    for result in results:
        paths = report.write(result, REPORTS)
        print(report.summary(result))
        assert result.passed, f"{result.name} failed; report: {paths['txt']}\n" + (
            report.summary(result)
        )
    return results


def test_the_group_is_three_lbs_and_the_first_holds_the_vip(trio: Lab) -> None:
    """Every LB serves every web node; with fast detection each runs BFD to both its peers."""
    assert trio.lb_names == ["lb-1", "lb-2", "lb-3"]
    assert trio.vip_holders() == ["lb-1"]
    for lb in trio.lbs:
        assert set(trio.backend_states(lb.name).values()) == {"UP"}, lb.name
        log = (trio.logdir(lb.name) / "keepalived.log").read_text(encoding="utf-8")
        bfd_up = {p for p in trio.lb_names if f"Tracked BFD instance BFD_{p} is UP" in log}
        expected = set(trio.lb_names) - {lb.name} if trio.spec.vrrp_fast_detection else set()
        assert bfd_up == expected, lb.name


def test_a_hard_failure_moves_the_vip_to_a_backup_which_keeps_it(trio: Lab) -> None:
    failure, returns = _drills(trio, "lb-hard-failure", "master-returns")
    assert failure.figures["master"] == "lb-1"
    # nopreempt: the returning LB leaves the VIP where the hard failure put it.
    assert returns.figures["holder_after"] == [failure.figures["new_master"]]


def test_partitions_of_three_heal_to_one_owner(trio: Lab) -> None:
    """VRRP cut at the switch; with fast detection, BFD alone cut too (VRRP passing)."""
    names = ["partition", *(["bfd-loss"] if trio.spec.vrrp_fast_detection else [])]
    cut, *_ = _drills(trio, *names)
    assert cut.figures["both_claimed_vip"], "the cut did not split the group"
