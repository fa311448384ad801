"""The lab's own pace, measured before a drill: how long one request takes when nothing is wrong
and nothing else is asked of the lab, and the probe that pace allows.

A drill measures what a failover costs a client; it must not measure an overload of its own
making. A probe that starts a request every 100 ms is nothing to a lab in namespaces (a request
takes about a millisecond) and saturates a lab of emulated VMs on a slow machine (a new TLS
connection there can take half a second of an LB's only vCPU), where the drill then sees
requests pile up behind one another as soon as one web node is gone. So the drills on VMs first
send :data:`BASELINE_REQUESTS` requests one at a time, and the probe is sized from what they
took:

- the probe starts a request every :data:`LOAD_HEADROOM` x the slow (90th percentile) latency
  at most. Each hop of the path (edge, LB, the web node that is left after one dies) spends at
  most that latency on a request, so none of them is busy with the probe for more than
  ``1 / LOAD_HEADROOM`` of the time, even with half the web nodes gone;
- a request counts as failed only after :data:`TIMEOUT_HEADROOM` x the slow latency (and never
  sooner than the probe's own timeout), so a slow answer is not taken for a lost one;
- the drills' waits before and after a fault leave room for a few of those requests.

Nothing here is tuned to one machine: a faster lab gets the probe's own interval back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from halab.drills.analysis import percentile, phase_medians_ms
from halab.target.probe import ProbeConfig, Sample
from halab.target.protocol import DrillTarget

#: Requests of the measurement, one after another.
BASELINE_REQUESTS = 20
#: The probe's interval is at least this many slow latencies (the probe keeps each hop busy for
#: at most a quarter of the time).
LOAD_HEADROOM = 4.0
#: A request times out after this many slow latencies at the earliest.
TIMEOUT_HEADROOM = 4.0


@dataclass(frozen=True)
class Baseline:
    """What one request at a time took through the public URL, with nothing wrong."""

    requests: int
    failed: int
    p50_s: float
    p90_s: float
    max_s: float
    #: Median time from a request's start to the end of each phase (connect, TLS, first byte).
    phases_median_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, samples: list[Sample]) -> Baseline:
        """The figures of a sequential run of samples."""
        ok = [s for s in samples if s.ok]
        latencies = [s.latency for s in ok]
        return cls(
            requests=len(samples),
            failed=len(samples) - len(ok),
            p50_s=round(percentile(latencies, 0.5), 4),
            p90_s=round(percentile(latencies, 0.9), 4),
            max_s=round(max(latencies, default=0.0), 4),
            phases_median_ms=phase_medians_ms(ok),
        )

    @property
    def sequential_rate(self) -> float:
        """Requests per second the lab serves one at a time (0 when none was answered)."""
        return round(1 / self.p50_s, 2) if self.p50_s > 0 else 0.0

    def paced_probe(self, cfg: ProbeConfig) -> ProbeConfig:
        """``cfg`` slowed and made patient enough for this lab (unchanged for a fast one)."""
        return replace(
            cfg,
            interval=round(max(cfg.interval, LOAD_HEADROOM * self.p90_s), 3),
            total_timeout=round(max(cfg.total_timeout, TIMEOUT_HEADROOM * self.p90_s), 3),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data, with the rate."""
        return {**asdict(self), "sequential_rate_per_s": self.sequential_rate}


class BaselineError(RuntimeError):
    """The lab did not answer with nothing wrong: no drill can start from there."""


def measure(target: DrillTarget, cfg: ProbeConfig, requests: int = BASELINE_REQUESTS) -> Baseline:
    """Send ``requests`` requests one at a time through ``target``'s public URL."""
    sequential = replace(cfg, sequential=True, max_requests=requests)
    bound = requests * (cfg.total_timeout + cfg.interval) + 1.0
    run = target.start_probe(sequential, bound)
    run.wait(bound + 5.0)
    baseline = Baseline.of(run.stop())
    if baseline.requests == 0 or baseline.failed * 2 > baseline.requests:
        raise BaselineError(
            f"{baseline.failed} of {baseline.requests} requests to {cfg.url} failed with nothing "
            "wrong: the lab does not serve"
        )
    return baseline
