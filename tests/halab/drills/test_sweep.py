"""The config sweep both labs run: every variant measured in turn, one row and one line each,
one table."""

from __future__ import annotations

from typing import Any

import pytest

from halab.drills.sweep import COLUMNS, Variant, run_sweep, sweep_table


def test_each_variant_is_measured_in_turn_into_a_row_with_its_values() -> None:
    variants = [Variant("off"), Variant("BFD 50 ms", {"bfdIntervalMs": "50"})]
    measured: list[str] = []
    lines: list[str] = []

    def measure(variant: Variant) -> dict[str, Any]:
        measured.append(variant.label)
        assert len(lines) == len(measured) - 1  # the previous variant's line came first
        return {"vip_moves": 0, "failed": 1, "hard_failure_outage_s": 0.4, "vip_move_s": 0.5}

    rows = run_sweep(variants, measure, lines.append)
    assert measured == []  # nothing runs before the caller takes the first row
    first = next(rows)
    assert first == {
        "variant": "off", "vip_moves": 0, "failed": 1, "hard_failure_outage_s": 0.4,
        "vip_move_s": 0.5,
    }  # fmt: skip
    assert next(rows)["bfdIntervalMs"] == "50"
    assert measured == ["off", "BFD 50 ms"]
    assert lines[0] == (
        "off: 0 VIP moves, 1 failed requests with nothing wrong; hard-failure outage 0.4 s"
    )
    assert len(lines) == 2
    with pytest.raises(StopIteration):
        next(rows)


def test_the_table_has_every_sweeps_columns_then_the_callers() -> None:
    rows = [
        {"variant": "a", "vip_moves": 0, "failed": 0, "hard_failure_outage_s": 0.4,
         "vip_move_s": 0.5, "stable": True},
        {"variant": "b", "vip_moves": 3, "failed": 7, "stable": False},
    ]  # fmt: skip
    table = sweep_table(rows, extra=(("stable", "stable"),)).splitlines()
    assert table[0] == "| variant | " + " | ".join(h for _, h in COLUMNS) + " | stable |"
    assert table[1] == "|---|" + "---|" * (len(COLUMNS) + 1)
    assert table[2:] == ["| a | 0 | 0 | 0.4 | 0.5 | yes |", "| b | 3 | 7 | - | - | no |"]
