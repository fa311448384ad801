"""Fast detection (BFD tracked by VRRP, a one-advert master-down timer) in the namespace lab.

The drills' own checks are the proof: a hard failure moves the VIP, the returning LB leaves it
where it is (nopreempt; before VRRP's start-up delay it took the VIP back), and a loss of BFD
alone leaves one owner. How fast, and what load does to it, is the benchmark's job
(``scripts/benchmark.py --fast-detection``), not an assertion here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = pytest.mark.lab

STACK = "dev"
REPORTS = REPO_ROOT / "reports" / "test-lab-fast-detection"


@pytest.fixture(scope="module")
def fast_lab() -> Iterator[NamespaceLab]:
    """The dev lab with vrrpFastDetection on, up for the module, checked gone afterwards."""
    with running_lab(STACK, {"vrrpFastDetection": True}) as lab:
        yield lab


def test_the_rendered_keepalived_runs_bfd_to_the_peer(fast_lab: NamespaceLab) -> None:
    for lb in fast_lab.lbs:
        log = (fast_lab.logdir(lb.name) / "keepalived.log").read_text(encoding="utf-8")
        assert "Starting BFD child process" in log
        for peer in fast_lab.lbs:
            if peer.name != lb.name:
                assert f"Tracked BFD instance BFD_{peer.name} is UP" in log, (
                    f"{lb.name}: BFD to {peer.name} never came up"
                )


@pytest.mark.parametrize("names", [("lb-hard-failure", "master-returns"), ("bfd-loss",)])
def test_drills_pass_with_fast_detection(fast_lab: NamespaceLab, names: tuple[str, ...]) -> None:
    passing_drills(fast_lab, names, REPORTS)
