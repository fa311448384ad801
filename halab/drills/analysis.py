"""Turn probe samples and marked events into the figures a drill reports (pure functions).

Definitions used everywhere (docs/failover.md and the benchmark):

- *failed request*: any sample whose outcome is not ``ok`` (timeouts, resets, non-2xx answers);
- *outage*: from the start of the first failed request to the start of the first successful
  request after the last failure, so its resolution is the probe interval (20 ms);
- *longest silence*: the longest of the outages of each run of failures that follow one another
  in send order; where the outage spans sporadic failures minutes apart, this is the longest
  time clients got no answer at all;
- *VIP move time*: from the fault's injection to the moment another LB's namespace shows the
  VIP (netlink, polled every 10 ms).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from halab.target.probe import OK, PHASES, Sample


@dataclass(frozen=True)
class Event:
    """Something that happened during a drill: a fault, a repair, a VIP change, a note."""

    t: float
    kind: str
    detail: str
    host: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """Inverse of :meth:`to_json`."""
        return cls(**data)


@dataclass
class Outage:
    """The client-visible gap in a window of samples."""

    failed: int
    outage_s: float
    first_failure_t: float | None = None
    recovered_t: float | None = None
    recovered: bool = True


@dataclass
class Metrics:
    """Counts and timings over a window of samples."""

    requests: int = 0
    ok: int = 0
    failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    backends: dict[str, int] = field(default_factory=dict)
    outage_s: float = 0.0
    recovered: bool = True
    max_latency_s: float = 0.0
    median_latency_ms: float = 0.0
    #: Median time from an answered request's start to the end of each of its phases (TCP
    #: connected, TLS done, first byte): where a slow request spent its time.
    phases_median_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def window(
    samples: Sequence[Sample], t_from: float | None = None, t_to: float | None = None
) -> list[Sample]:
    """Samples started in [t_from, t_to), in start order."""
    return sorted(
        (s for s in samples if (t_from is None or s.t >= t_from) and (t_to is None or s.t < t_to)),
        key=lambda s: (s.t, s.seq),
    )


def outage(samples: Sequence[Sample]) -> Outage:
    """First failure to first success after the last failure (0 when nothing failed)."""
    ordered = window(samples)
    failures = [s for s in ordered if s.outcome != OK]
    if not failures:
        return Outage(failed=0, outage_s=0.0)
    first, last = failures[0], failures[-1]
    after = next((s for s in ordered if s.ok and s.t > last.t), None)
    if after is None:
        end = ordered[-1].t + ordered[-1].latency
        return Outage(len(failures), end - first.t, first.t, None, recovered=False)
    return Outage(len(failures), after.t - first.t, first.t, after.t)


def longest_silence(samples: Sequence[Sample]) -> float:
    """The longest run of failures in send order: its first failure to the next success (or to
    the end of the window when none came); 0 when nothing failed."""
    ordered = window(samples)
    longest = 0.0
    run_start: float | None = None
    for sample in ordered:
        if not sample.ok:
            run_start = sample.t if run_start is None else run_start
        elif run_start is not None:
            longest = max(longest, sample.t - run_start)
            run_start = None
    if run_start is not None:
        last = ordered[-1]
        longest = max(longest, last.t + last.latency - run_start)
    return longest


def metrics(samples: Sequence[Sample]) -> Metrics:
    """Counts, the outage and latencies of a window."""
    ordered = window(samples)
    out = Metrics(requests=len(ordered))
    if not ordered:
        return out
    out.ok = sum(1 for s in ordered if s.ok)
    out.failed = out.requests - out.ok
    out.outcomes = dict(Counter(s.outcome for s in ordered))
    out.statuses = dict(Counter(str(s.status) for s in ordered if s.status is not None))
    out.backends = dict(Counter(s.backend for s in ordered if s.ok and s.backend))
    gap = outage(ordered)
    out.outage_s = round(gap.outage_s, 4)
    out.recovered = gap.recovered
    latencies = sorted(s.latency for s in ordered)
    out.max_latency_s = round(latencies[-1], 4)
    out.median_latency_ms = round(1000 * latencies[len(latencies) // 2], 2)
    out.phases_median_ms = phase_medians_ms([s for s in ordered if s.ok])
    return out


def percentile(values: Sequence[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))]


def phase_medians_ms(samples: Sequence[Sample]) -> dict[str, float]:
    """The median of each phase a request went through (connect, TLS, first byte), in ms."""
    medians = {}
    for phase in PHASES:
        values = [v for s in samples if (v := getattr(s, phase)) is not None]
        if values:
            medians[phase.removesuffix("_s")] = round(1000 * percentile(values, 0.5), 2)
    return medians


def alternation(samples: Sequence[Sample]) -> tuple[int, int]:
    """(pairs of consecutive successful answers from different web nodes, pairs in all)."""
    answers = [s.backend for s in window(samples) if s.ok and s.backend]
    pairs = list(itertools.pairwise(answers))
    return sum(1 for a, b in pairs if a != b), len(pairs)


def balanced(counts: Mapping[str, int], webs: Sequence[str], slack: int = 2) -> bool:
    """Every web node answered, and no two answered counts differ by more than ``slack``."""
    got = [int(counts.get(w, 0)) for w in webs]
    return min(got) > 0 and max(got) - min(got) <= slack


def vip_changes(events: Sequence[Event]) -> list[Event]:
    """The VIP events (``vip`` kind), in time order."""
    return sorted((e for e in events if e.kind == "vip"), key=lambda e: e.t)


def first_vip_gain(
    events: Sequence[Event], after: float, exclude: str | None = None
) -> Event | None:
    """The first ``+VIP`` on a host other than ``exclude`` at or after ``after``."""
    for e in vip_changes(events):
        if e.t >= after and e.detail == "+VIP" and e.host != exclude:
            return e
    return None


def vip_moves(events: Sequence[Event], after: float | None = None) -> int:
    """How many times the VIP appeared on a host after ``after`` (initial state excluded)."""
    return sum(
        1 for e in vip_changes(events) if e.detail == "+VIP" and (after is None or e.t >= after)
    )


def first_status_after(samples: Sequence[Sample], status: int, after: float) -> Sample | None:
    """The first sample started after ``after`` that got HTTP ``status``."""
    return next((s for s in window(samples, after) if s.status == status), None)
