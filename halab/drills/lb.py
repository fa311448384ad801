"""Drills on the LBs: HAProxy dies, the master dies and returns, the master stalls."""

from __future__ import annotations

import time

from halab.drills import analysis
from halab.drills.core import (
    DrillResult,
    DrillRun,
    Recorder,
    check_healthy_before,
    crash_the_master,
    finish,
    holder_among,
    master_and_backups,
    new_result,
)

#: How long ``lb-stall`` stops the master: about one advert at the project's 40 ms adverts.
STALL_S = 0.05


def haproxy_death(run: DrillRun) -> DrillResult:
    """Drill 3: HAProxy dies on the master, the host stays up; the tracked process moves the VIP."""
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("haproxy-death", "HAProxy dies on the master", target, stack)
    rec = Recorder(target, probe)
    with rec.observing(15.0) as (watcher, samples):
        master, backups = master_and_backups(target, watcher.holders)
        time.sleep(run.lead_s)
        t0 = target.kill_daemon(master, "haproxy")
        rec.mark("inject", f"{master}: SIGKILL haproxy", master, t0)
        moved = watcher.wait_for(lambda h: holder_among(h, backups), 10.0)
        time.sleep(1.0)
        t1 = target.start_daemon(master, "haproxy")
        rec.mark("restore", f"{master}: haproxy started again", master, t1)
        if target.settings.vrrp_preempt:
            # With preempt the repaired LB takes the VIP back: keep probing through that move.
            watcher.wait_for(lambda h: h == [master], target.settings.vip_moved_s + 3.0)
        time.sleep(0.5)
    gain = analysis.first_vip_gain(rec.events, t0, exclude=master)
    m = analysis.metrics(analysis.window(samples, t0 - 0.3, t1))
    back = analysis.metrics(analysis.window(samples, t1))
    result.figures = {
        **m.to_json(),
        "master": master,
        "vip_move_s": round(gain.t - t0, 4) if gain else None,
        "failed_after_repair": back.failed,
    }
    result.checks = {
        "VIP moved to one other LB": moved is not None,
        "client recovered": m.recovered,
        f"outage < {bounds.max_haproxy_outage_s}s": m.outage_s < bounds.max_haproxy_outage_s,
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)


def lb_hard_failure(run: DrillRun) -> DrillResult:
    """Drill 2: the master LB freezes and dies; the VIP moves; what did the client see?"""
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("lb-hard-failure", "Hard failure of the master LB", target, stack)
    rec = Recorder(target, probe)
    tail = run.tail_s(1.2)
    advert = target.settings.vrrp_advert_s
    with rec.observing(run.lead_s + advert + 10.0 + tail + 3.0) as (watcher, samples):
        master, backups = master_and_backups(target, watcher.holders)
        # The kill lands at a random phase of the advert cycle, as a real crash would.
        time.sleep(run.lead_s + run.rng.uniform(0, advert))
        t0 = target.crash_host(master)
        rec.mark("inject", f"{master}: SIGSTOP all processes, then SIGKILL", master, t0)
        # The crashed LB's namespace still shows the VIP (nobody removed it): not a holder.
        moved = watcher.wait_for(lambda h: any(b in h for b in backups), 10.0)
        time.sleep(tail)
        new_master = [h for h in watcher.holders if h != master]
    gain = analysis.first_vip_gain(rec.events, t0, exclude=master)
    after = analysis.window(samples, t0 - 0.3)
    m = analysis.metrics(after)
    result.figures = {
        **m.to_json(),
        "master": master,
        "new_master": new_master[0] if len(new_master) == 1 else new_master,
        # The backup with the highest priority has the shortest master-down timer.
        "expected_new_master": backups[0],
        "vip_move_s": round(gain.t - t0, 4) if gain else None,
    }
    result.checks = {
        "VIP moved to one other LB": moved is not None and holder_among(new_master, backups),
        "client recovered": m.recovered,
        f"outage < {bounds.max_lb_outage_s}s": m.outage_s < bounds.max_lb_outage_s,
    }
    check_healthy_before(result, samples, t0)
    # master-returns brings it back.
    run.crashed = master
    return finish(result, rec, samples)


def master_returns(run: DrillRun) -> DrillResult:
    """Drill 5: the failed LB comes back; the VIP stays (nopreempt) or returns (preempt).

    The LB is the one ``lb-hard-failure`` crashed; without one, the master is crashed first
    (not measured here).
    """
    target, stack, probe = run.target, run.stack, run.probe
    host = run.crashed if run.crashed is not None else crash_the_master(target)
    result = new_result("master-returns", "The failed master returns", target, stack)
    rec = Recorder(target, probe)
    settings = target.settings
    preempt = settings.vrrp_preempt
    with rec.observing(15.0) as (watcher, samples):
        # The crashed LB's namespace may still show the VIP (nobody removed it): not a holder.
        holder_before = [h for h in watcher.holders if h != host]
        time.sleep(0.5)
        t0 = target.restore_host(host)
        rec.mark("restore", f"{host}: haproxy + keepalived started again", host, t0)
        # Long enough for a preempting master: its start-up (VRRP's start-up delay first), then
        # the takeover timer.
        settle = settings.vrrp_startup_delay_s + max(2.0, settings.vip_moved_s + 1.5)
        # nopreempt: the VIP stays where it is. preempt: it goes to the highest priority of the
        # holder and the returning LB (lb_names is in priority order).
        expected = list(holder_before)
        if preempt:
            candidates = {host, *holder_before}
            expected = [next(n for n in target.lb_names if n in candidates)]
            watcher.wait_for(lambda h: h == expected, settle + 5)
        time.sleep(settle)
        holder_after = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0))
    result.figures = {
        **m.to_json(),
        "preempt": preempt,
        "holder_before": holder_before,
        "holder_after": holder_after,
        "vip_moves": analysis.vip_moves(rec.events, t0),
    }
    result.checks = {
        f"VIP on {expected} ({'preempt' if preempt else 'nopreempt'})": holder_after == expected,
        "client recovered": m.recovered,
    }
    run.crashed = None
    return finish(result, rec, samples)


def lb_stall(run: DrillRun) -> DrillResult:
    """The master stops for :data:`STALL_S` (SIGSTOP, then SIGCONT) and lives on.

    A stall shorter than the detection time must leave the group as it is; a longer one looks
    exactly like a death for that long, and the VIP moving is then what the setting trades.
    """
    target, stack, probe = run.target, run.stack, run.probe
    stall_s = STALL_S
    result = new_result(
        "lb-stall", f"The master LB stalls for {stall_s * 1000:.0f} ms", target, stack
    )
    rec = Recorder(target, probe)
    with rec.observing(10.0) as (watcher, samples):
        master, _backups = master_and_backups(target, watcher.holders)
        time.sleep(run.lead_s)
        t0, stopped = target.stall_host(master, stall_s)
        rec.mark(
            "inject", f"{master}: SIGSTOP all processes for {stopped * 1000:.0f} ms", master, t0
        )
        time.sleep(3.0)
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0 - 0.3))
    moves = analysis.vip_moves(rec.events, t0)
    detect = target.settings.vrrp_detection_s
    result.figures = {
        **m.to_json(),
        "master": master,
        "stopped_s": round(stopped, 4),
        "detection_s": detect,
        "vip_moves": moves,
        "holders_after": holders,
    }
    if moves:
        result.notes.append(
            f"the VIP moved {moves} time(s): a stall of {stopped * 1000:.0f} ms against "
            f"{detect * 1000:.0f} ms of detection"
            + (" (longer: the trade of fast detection)" if stopped >= detect else " (shorter!)")
        )
    result.checks = {
        "one VIP owner after": len(holders) == 1,
        "client recovered": m.recovered,
        "no VIP move when the stall is shorter than detection": stopped >= detect or moves == 0,
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)
