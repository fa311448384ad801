"""The load drill: requests with every core busy; fast timers must not flap."""

from __future__ import annotations

import time

from halab.drills import analysis
from halab.drills.core import (
    DrillResult,
    DrillRun,
    Recorder,
    finish,
    new_result,
)


def load_run(run: DrillRun) -> DrillResult:
    """The request loop plus a CPU hog on every core; the fast timers must not flap."""
    target, stack, probe = run.target, run.stack, run.probe
    seconds = run.load_seconds
    result = new_result(
        "load-run", f"{seconds:.0f}s of requests with every core busy", target, stack
    )
    rec = Recorder(target, probe)
    with rec.observing(seconds + 10) as (watcher, samples):
        t0 = rec.mark("inject", f"CPU hog on every core for {seconds:.0f}s")
        with target.cpu_hog(seconds):
            time.sleep(seconds)
        t1 = rec.mark("restore", "CPU hog stopped")
        holders = list(watcher.holders)
    m = analysis.metrics(analysis.window(samples, t0, t1))
    moves = analysis.vip_moves(rec.events, t0)
    result.figures = {**m.to_json(), "vip_moves": moves, "holders_at_end": holders}
    result.checks = {"no VIP move": moves == 0, "no failed request": m.failed == 0}
    return finish(result, rec, samples)
