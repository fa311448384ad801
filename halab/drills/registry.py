"""The registry of drills and the one dispatch that runs them, on any target.

A drill is a function of a :class:`halab.drills.core.DrillRun` that returns its
:class:`halab.drills.core.DrillResult`. A new drill is that function, in a module of this
package, plus one entry in :data:`REGISTRY`: ``python -m halab lab drill``, the tests, the
benchmark and ``python -m halab check`` (VMs) then run it by name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from halab.drills import lb, load, network, web
from halab.drills.core import Bounds, DrillResult, DrillRun, settle
from halab.target.probe import ProbeConfig
from halab.target.protocol import DrillTarget


@dataclass(frozen=True)
class Drill:
    """One drill: its name, what runs it, and whether a full run includes it."""

    name: str
    run: Callable[[DrillRun], DrillResult]
    #: In a full run (``lab drill``); the others run only when asked by name.
    default: bool = True


#: Every drill, in the order a full run uses: each leaves the lab as it found it, except that
#: the VIP may sit on another LB (nopreempt) and ``master-returns`` needs the LB that
#: ``lb-hard-failure`` crashed (or crashes the master itself).
REGISTRY: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill("round-robin", web.round_robin),
        Drill("app-crash", web.app_crash),
        Drill("all-webs-down", web.all_webs_down),
        Drill("web-hard-failure", web.web_hard_failure),
        Drill("haproxy-death", lb.haproxy_death),
        Drill("lb-hard-failure", lb.lb_hard_failure),
        Drill("master-returns", lb.master_returns),
        Drill("partition", network.partition),
        # A minute of load.
        Drill("load-run", load.load_run, default=False),
        # What fast detection trades.
        Drill("lb-stall", lb.lb_stall, default=False),
        Drill("bfd-loss", network.bfd_loss, default=False),
    )
}
#: The drills of a full run, in order.
ALL = tuple(name for name, d in REGISTRY.items() if d.default)
#: Run only when asked.
EXTRA = tuple(name for name, d in REGISTRY.items() if not d.default)


def run_drill(run: DrillRun, name: str) -> DrillResult:
    """One drill by name, from a settled lab (one VIP holder, nothing moving)."""
    drill = REGISTRY.get(name)
    if drill is None:
        raise ValueError(f"unknown drill {name!r} (known: {', '.join(REGISTRY)})")
    settle(run.target, exclude=run.crashed, timeout=run.settle_timeout_s)
    return drill.run(run)


def run_drills(
    target: DrillTarget,
    stack: str,
    names: Sequence[str] = ALL,
    *,
    bounds: Bounds | None = None,
    probe: ProbeConfig | None = None,
    seed: int | None = None,
    on_result: Callable[[DrillResult], None] | None = None,
    load_seconds: float = 60.0,
) -> list[DrillResult]:
    """Run drills in order; an LB a drill left crashed is started again at the end."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown drill {unknown[0]!r} (known: {', '.join(REGISTRY)})")
    run = DrillRun(
        target,
        stack,
        bounds or Bounds(),
        probe or ProbeConfig(url=target.public_url),
        random.Random(seed),  # noqa: S311 - a kill-phase jitter, not a secret
        load_seconds,
    )
    results: list[DrillResult] = []
    for name in names:
        result = run_drill(run, name)
        results.append(result)
        if on_result is not None:
            on_result(result)
    if run.crashed is not None:
        target.restore_host(run.crashed)
    return results
