"""Two labs up at once on one machine, each with its own address plan: a drill on each passes
while the other runs, and taking one down leaves the other serving.

The dev stack (the tutorial's addresses) and the staging stack (three LBs, addresses of its
own) share nothing but the machine: their namespaces, processes and Keepalived run files carry
their lab's name, and each LB's HAProxy a name of its own
(``RenderTarget.haproxy_process_name``), so neither lab's Keepalived tracks the other's HAProxy.
"""

from __future__ import annotations

import pytest

from halab.model.roles import ZoneName
from halab.model.stackconfig import REPO_ROOT
from tests.halab.nslab.running import passing_drills, running_lab

pytestmark = pytest.mark.lab

REPORTS = REPO_ROOT / "reports" / "test-two-labs"
DRILLS = ["round-robin", "lb-hard-failure", "master-returns"]


def test_two_stacks_up_at_once_each_passes_its_drills() -> None:
    with running_lab("dev") as dev:
        with running_lab("staging") as staging:
            assert dev.spec.lab_name != staging.spec.lab_name
            for zone in ZoneName:
                assert not dev.spec.zones[zone].cidr.overlaps(staging.spec.zones[zone].cidr)
            names = {dev.render_target(lb.name).haproxy_process_name(lb.name) for lb in dev.lbs} | {
                staging.render_target(lb.name).haproxy_process_name(lb.name) for lb in staging.lbs
            }
            assert len(names) == len(dev.lbs) + len(staging.lbs), names
            passing_drills(dev, DRILLS, REPORTS / "dev")
            passing_drills(staging, DRILLS, REPORTS / "staging")
        # staging is down and gone (running_lab checked it): dev still serves.
        passing_drills(dev, ["round-robin"], REPORTS / "dev-after")
