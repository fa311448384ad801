"""The lab's pace with nothing wrong, and the probe it allows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from halab.drills.baseline import LOAD_HEADROOM, Baseline, BaselineError, measure
from halab.target.probe import OK, TIMEOUT, ProbeConfig, Sample

FASTEST = ProbeConfig("https://192.0.2.10/", interval=0.1, connect_timeout=1.0, total_timeout=2.0)


def _samples(latencies: list[float], failed: int = 0) -> list[Sample]:
    ok = [
        Sample(i, float(i), lat, OK, 200, "web-1", connect_s=lat / 10, first_byte_s=lat * 0.9)
        for i, lat in enumerate(latencies)
    ]
    lost = [Sample(100 + i, 100.0 + i, 2.0, TIMEOUT) for i in range(failed)]
    return ok + lost


def test_figures_of_a_sequential_run() -> None:
    base = Baseline.of(_samples([0.1 * k for k in range(1, 11)], failed=1))
    assert (base.requests, base.failed) == (11, 1)
    # Nearest rank over the answered ones: 0.5 is the 5th of 10, 0.9 the 9th.
    assert (base.p50_s, base.p90_s, base.max_s) == (0.5, 0.9, 1.0)
    assert base.phases_median_ms == {"connect": 50.0, "first_byte": 450.0}
    assert base.sequential_rate == 2.0


def test_a_fast_lab_keeps_the_probe_as_it_is() -> None:
    # A lab in namespaces answers in a few ms: 4 x 5 ms is below the probe's own 100 ms.
    fast = Baseline.of(_samples([0.005] * 20))
    assert fast.paced_probe(FASTEST) == FASTEST


def test_a_slow_lab_gets_a_slower_more_patient_probe() -> None:
    # Emulated VMs on a slow machine: 600 ms for a new TLS connection at the 90th percentile.
    slow = Baseline.of(_samples([0.4] * 17 + [0.6] * 3))
    probe = slow.paced_probe(FASTEST)
    assert probe.interval == pytest.approx(LOAD_HEADROOM * 0.6)
    # Each hop busy at most a quarter of the time, even the one web node left of two.
    assert slow.p90_s / probe.interval <= 0.25
    assert probe.total_timeout == pytest.approx(2.4)
    assert (probe.url, probe.connect_timeout) == (FASTEST.url, FASTEST.connect_timeout)


@dataclass
class _Run:
    samples: list[Sample]
    waited: list[float] = field(default_factory=list)

    def wait(self, timeout: float) -> None:
        self.waited.append(timeout)

    def stop(self) -> list[Sample]:
        return self.samples


@dataclass
class _Target:
    """The one thing measure() asks of a target: a probe."""

    samples: list[Sample]
    started: list[tuple[ProbeConfig, float]] = field(default_factory=list)

    def start_probe(self, cfg: ProbeConfig, duration: float) -> _Run:
        self.started.append((cfg, duration))
        return _Run(self.samples)


def test_measure_sends_one_request_at_a_time_and_bounds_its_time() -> None:
    target = _Target(_samples([0.2] * 20))
    base = measure(target, FASTEST, requests=20)  # type: ignore[arg-type]
    cfg, duration = target.started[0]
    assert cfg.sequential and cfg.max_requests == 20
    assert duration == pytest.approx(20 * (2.0 + 0.1) + 1.0)
    assert base.p90_s == 0.2


def test_a_lab_that_does_not_answer_is_refused() -> None:
    target = _Target(_samples([0.2] * 4, failed=16))
    with pytest.raises(BaselineError, match="16 of 20 requests"):
        measure(target, FASTEST)  # type: ignore[arg-type]
