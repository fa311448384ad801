"""The benchmark's bookkeeping: drill figures become table rows (no lab needed)."""

from __future__ import annotations

import argparse

from halab.bench import benchmark
from halab.drills.core import DrillResult
from tests.halab.drills.scripted import scripted_settings


def _result(name: str, **figures: object) -> DrillResult:
    return DrillResult(name, name, "dev", scripted_settings(), 0.0, figures=dict(figures))


def test_partition_and_load_run_figures_reach_the_table() -> None:
    flat = benchmark._flatten(
        [
            _result(
                "partition",
                failed=1,
                outage_s=0.02,
                single_owner_after_heal_s=0.0573,
                failed_after_heal=0,
                both_claimed_vip=True,
                requests=204,
            ),
            _result("load-run", failed=0, outage_s=0.0, vip_moves=0, requests=2950),
        ]
    )
    assert flat["partition.single_owner_after_heal_ms"] == 57.3
    assert flat["partition.failed_after_heal"] == 0.0
    assert flat["partition.both_claimed_vip"] == 1.0
    assert flat["load-run.vip_moves"] == 0.0
    assert flat["load-run.requests"] == 2950.0
    runs = [
        benchmark.RunFigures("dev", 1, flat),
        benchmark.RunFigures("dev", 2, {**flat, "partition.single_owner_after_heal_ms": 80.0}),
    ]
    table = benchmark.median_table(runs, ["dev"])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    # The median of 57.3 and 80.0; the load run only in the run that had it.
    assert rows["partition: one VIP owner after healing (ms)"].endswith("| 68.65 |")
    assert rows["load run, every core busy: VIP moves (run 1)"].endswith("| 0 |")
    assert rows["runs"].endswith("| 2 |")


def test_every_drill_of_the_benchmark_has_a_row() -> None:
    in_rows = {name for _label, name, _key in benchmark.ROWS if name}
    assert set(benchmark.DRILLS) <= in_rows
    assert "load-run" in in_rows
    # Partition must see the higher-priority LB holding the VIP: before anything moves it.
    assert benchmark.DRILLS.index("partition") < benchmark.DRILLS.index("haproxy-death")


def test_load_run_defaults_to_the_issues_sixty_seconds() -> None:
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    assert parser.parse_args([]).load_run_seconds == 60.0
    assert parser.parse_args(["--load-run-seconds", "0"]).load_run_seconds == 0.0


def test_fast_detection_runs_each_stack_off_and_on_side_by_side() -> None:
    assert benchmark.fast_detection_variants(["dev"], False) == [("dev", "dev", None)]
    assert benchmark.fast_detection_variants(["dev"], True) == [
        ("dev", "dev", {"vrrpFastDetection": False}),
        ("dev", "dev +fast detection", {"vrrpFastDetection": True}),
    ]


def test_a_stack_that_refuses_fast_detection_runs_with_it_off_only() -> None:
    """The tutorial's preempt is refused with fast detection: its column is measured as is."""
    assert benchmark.allows_fast_detection("dev")
    assert not benchmark.allows_fast_detection("tutorial")
    variants = benchmark.fast_detection_variants(
        ["dev", "tutorial"], True, benchmark.allows_fast_detection
    )
    assert [label for _stack, label, _overrides in variants] == [
        "dev", "dev +fast detection", "tutorial",
    ]  # fmt: skip


def test_detection_is_bfd_with_fast_detection_else_the_down_timer() -> None:
    fast = scripted_settings(vrrpAdvertIntervalMs=40, vrrpFastDetection=True)
    assert fast.vrrp_detection_s == 0.03
    assert scripted_settings(vrrpAdvertIntervalMs=40).vrrp_detection_s == 0.12


def test_load_runs_columns_each_variant_with_realtime_on_and_off() -> None:
    variants = benchmark.fast_detection_variants(["dev"], both=True)
    assert benchmark.load_variants(variants, realtime_both=False) == [
        ("dev", "dev", {"vrrpFastDetection": False}),
        ("dev", "dev +fast detection", {"vrrpFastDetection": True}),
    ]
    columns = benchmark.load_variants(variants, realtime_both=True)
    assert [label for _, label, _ in columns] == [
        "dev realtime on",
        "dev realtime off",
        "dev +fast detection realtime on",
        "dev +fast detection realtime off",
    ]
    assert columns[3][2] == {"vrrpFastDetection": True, "vrrpRealtime": False}
    assert benchmark.load_variants(benchmark.fast_detection_variants(["dev"], both=False), True)[
        1
    ] == (
        "dev",
        "dev realtime off",
        {"vrrpRealtime": False},
    )


def test_load_table_counts_the_clean_runs_per_column() -> None:
    def row(label: str, moves: int, failed: int) -> dict[str, object]:
        return {"label": label, "vip_moves": moves, "failed": failed, "requests": 100}

    table = benchmark.load_table([row("on", 0, 0), row("on", 2, 3), row("off", 0, 0)])
    assert "| on | 2 | 1 | 0, 2 | 0/100, 3/100 | -, - |" in table
    assert "| off | 1 | 1 | 0 | 0/100 | - |" in table


def test_load_runs_options() -> None:
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    args = parser.parse_args(["--load-runs", "5", "--realtime-both", "--no-drills"])
    assert (args.load_runs, args.realtime_both, args.no_drills) == (5, True, True)
    assert parser.parse_args([]).load_runs == 0


def test_the_sweep_takes_each_advert_interval_with_realtime_on_then_off() -> None:
    variants = benchmark.advert_variants([10, 50])
    assert [v.label for v in variants] == [
        "advert 10 ms, realtime on",
        "advert 10 ms, realtime off",
        "advert 50 ms, realtime on",
        "advert 50 ms, realtime off",
    ]
    assert variants[1].values == {
        "vrrpVersion": 3,
        "vrrpAdvertIntervalMs": 10,
        benchmark.REALTIME: False,
    }
