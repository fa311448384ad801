"""Outage, alternation and VIP-move figures from synthetic samples."""

from __future__ import annotations

from halab.drills import analysis
from halab.drills.analysis import Event
from halab.target.probe import Sample


def _s(seq: int, ok: bool, backend: str | None = None) -> Sample:
    return Sample(
        seq=seq,
        t=100.0 + seq * 0.02,
        latency=0.004,
        outcome="ok" if ok else "connect_timeout",
        status=200 if ok else None,
        backend=backend,
    )


def test_outage_is_first_failure_to_first_success_after_the_last() -> None:
    samples = [_s(0, True), _s(1, False), _s(2, True), _s(3, False), _s(4, True), _s(5, True)]
    gap = analysis.outage(samples)
    assert gap.failed == 2
    assert abs(gap.outage_s - 0.06) < 1e-9
    assert gap.recovered


def test_no_failure_no_outage_and_unrecovered_is_flagged() -> None:
    assert analysis.outage([_s(0, True)]).outage_s == 0
    gap = analysis.outage([_s(0, True), _s(1, False), _s(2, False)])
    assert not gap.recovered and gap.failed == 2


def test_longest_silence_is_the_longest_run_of_failures_not_the_span() -> None:
    # Two lone failures 0.16 s apart and a run of three: the outage spans all of them, the
    # longest silence is the run (first failure at seq 6 to the success at seq 9).
    oks = {0, 2, 3, 4, 5, 9, 10}
    samples = [_s(i, i in oks) for i in range(11)]
    assert abs(analysis.outage(samples).outage_s - 0.16) < 1e-9
    assert abs(analysis.longest_silence(samples) - 0.06) < 1e-9
    assert analysis.longest_silence([_s(0, True), _s(1, True)]) == 0
    # Unrecovered: to the end of the last request.
    assert abs(analysis.longest_silence([_s(0, True), _s(1, False), _s(2, False)]) - 0.024) < 1e-9


def test_alternation_and_metrics() -> None:
    samples = [_s(i, True, f"web-{1 + i % 2}") for i in range(10)]
    assert analysis.alternation(samples) == (9, 9)
    m = analysis.metrics(samples)
    assert m.failed == 0 and m.backends == {"web-1": 5, "web-2": 5}


def test_vip_events() -> None:
    events = [
        Event(1.0, "vip-initial", "lb-1"),
        Event(2.0, "vip", "+VIP", "lb-2"),
        Event(2.5, "vip", "-VIP", "lb-1"),
    ]
    gain = analysis.first_vip_gain(events, 1.5, exclude="lb-1")
    assert gain is not None and gain.host == "lb-2"
    assert analysis.vip_moves(events) == 1
    assert analysis.vip_moves(events, after=3.0) == 0
