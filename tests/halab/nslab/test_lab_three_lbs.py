"""Three LBs in one VRRP group (the staging stack: config only), in network namespaces.

The same drills as the pair's, judged by their own checks: the VIP goes to one of the backups
when the master dies, stays where it is when the old master returns (nopreempt), and a
partition that lets all three claim it heals to one owner.

Keepalived learns of HAProxy's death through the kernel's process events, which reach only the
initial PID namespace; ``make fresh-test`` runs the tests in a PID namespace of its own, where
the lab's Keepalived polls for HAProxy instead
(:attr:`halab.render.hosts.RenderTarget.process_events`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = pytest.mark.lab

STACK = "staging"
REPORTS = REPO_ROOT / "reports" / "test-lab-three-lbs"


@pytest.fixture(scope="module")
def trio() -> Iterator[NamespaceLab]:
    """staging's lab: 3 LBs, 3 web nodes."""
    with running_lab(STACK) as lab:
        yield lab


def test_the_group_is_three_lbs_and_the_first_holds_the_vip(trio: NamespaceLab) -> None:
    """Every LB serves every web node, and the first (priority 150) holds the VIP."""
    assert trio.lb_names == ["lb-1", "lb-2", "lb-3"]
    assert [m.priority for m in trio.spec.plan.vrrp_members] == [150, 100, 50]
    assert trio.vip_holders() == ["lb-1"]
    for lb in trio.lbs:
        assert set(trio.backend_states(lb.name).values()) == {"UP"}, lb.name


def test_a_hard_failure_moves_the_vip_to_a_backup_which_keeps_it(trio: NamespaceLab) -> None:
    failure, returns = passing_drills(trio, ["lb-hard-failure", "master-returns"], REPORTS)
    assert failure.figures["master"] == "lb-1"
    # nopreempt: the returning LB leaves the VIP where the hard failure put it.
    assert returns.figures["holder_after"] == [failure.figures["new_master"]]


def test_a_partition_of_three_heals_to_one_owner(trio: NamespaceLab) -> None:
    """VRRP cut at the switch: every LB claims the VIP; healed, one keeps it."""
    (cut,) = passing_drills(trio, ["partition"], REPORTS)
    assert cut.figures["both_claimed_vip"], "the cut did not split the group"
