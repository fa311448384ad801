"""Drills on the network between the LBs: VRRP cut at the switch, BFD alone cut."""

from __future__ import annotations

import time

from halab.drills import analysis
from halab.drills.core import (
    DrillResult,
    DrillRun,
    Recorder,
    check_healthy_before,
    finish,
    new_result,
)

#: How long ``bfd-loss`` drops BFD between the LBs.
BFD_CUT_S = 3.0


def partition(run: DrillRun) -> DrillResult:
    """VRRP between the LBs is cut (both may claim the VIP), then healed.

    The LBs settle on one owner within a few adverts; what can lag is the edge's ARP entry for the
    VIP, which the second master's gratuitous ARPs pointed at itself during the cut. So the client
    is watched past ``bounds.max_heal_s``: a stale entry shows as timeouts until it ages out.
    """
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("partition", "VRRP partition between the LBs, then healed", target, stack)
    # Long enough for the backup's master-down timer to expire (its takeover time, a second
    # more): the cut must really split the group, also with the tutorial's 1 s adverts.
    cut_s = max(3.0, target.settings.vrrp_takeover_s + 1.0)
    rec = Recorder(target, probe)
    with rec.observing(cut_s + bounds.max_heal_s + 15.0) as (watcher, samples):
        time.sleep(run.lead_s)
        holder_before = list(watcher.holders)
        t0 = target.set_vrrp_partition(True)
        rec.mark("inject", "VRRP between the LBs dropped at the switch", None, t0)
        split = watcher.wait_for(lambda h: len(h) >= 2, cut_s)
        remaining = cut_s - (time.time() - t0)
        if remaining > 0:
            time.sleep(remaining)
        t1 = target.set_vrrp_partition(False)
        rec.mark("restore", "VRRP passes again", None, t1)
        single = watcher.wait_for(lambda h: len(h) == 1, 10.0)
        time.sleep(max(0.0, t1 + bounds.max_heal_s + 1.0 - time.time()))
        owner_after = list(watcher.holders)
    heal = round(single - t1, 4) if single else None
    m = analysis.metrics(analysis.window(samples, t0))
    after_heal = analysis.window(samples, t1)
    failed_after_heal = [s for s in after_heal if not s.ok]
    # Requests started once the bound has passed must all succeed.
    late = analysis.window(samples, t1 + bounds.max_heal_s)
    result.figures = {
        **m.to_json(),
        "holder_before": holder_before,
        "both_claimed_vip": split is not None,
        "single_owner_after_heal_s": heal,
        "owner_after_heal": owner_after,
        "failed_after_heal": len(failed_after_heal),
        "last_failure_after_heal_s": (
            round(max(s.t for s in failed_after_heal) - t1, 4) if failed_after_heal else None
        ),
    }
    result.checks = {
        f"exactly one VIP owner within {bounds.max_heal_s}s of healing": heal is not None
        and heal <= bounds.max_heal_s
        and len(owner_after) == 1,
        f"client served again within {bounds.max_heal_s}s of healing": bool(late)
        and all(s.ok for s in late),
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)


def bfd_loss(run: DrillRun) -> DrillResult:
    """BFD between the LBs is dropped while VRRP passes, then passes again.

    Both LBs then believe their peer dead and run at the top priority; VRRP must still keep one
    owner, or recover to one cleanly once BFD is back.
    """
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    cut_s = BFD_CUT_S
    result = new_result("bfd-loss", "BFD between the LBs lost, VRRP passing", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(cut_s + bounds.max_heal_s + 10.0) as (watcher, samples):
        time.sleep(run.lead_s)
        t0 = target.set_bfd_loss(True)
        rec.mark("inject", "BFD between the LBs dropped at the switch", None, t0)
        split = watcher.wait_for(lambda h: len(h) >= 2, cut_s)
        time.sleep(max(0.0, t0 + cut_s - time.time()))
        t1 = target.set_bfd_loss(False)
        rec.mark("restore", "BFD passes again", None, t1)
        time.sleep(bounds.max_heal_s + 1.0)
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0))
    late = analysis.window(samples, t1 + bounds.max_heal_s)
    result.figures = {
        **m.to_json(),
        "vip_moves_during_loss": analysis.vip_moves([e for e in rec.events if e.t < t1], t0),
        "vip_moves_after": analysis.vip_moves(rec.events, t1),
        "both_claimed_vip": split is not None,
        "holders_after": holders,
    }
    result.checks = {
        "one VIP owner after": len(holders) == 1,
        f"client served {bounds.max_heal_s}s after BFD is back": bool(late)
        and all(s.ok for s in late),
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)
