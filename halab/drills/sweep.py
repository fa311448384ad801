"""A config sweep: one lab taken through variants of its config, the same figures on each.

Per variant: the lab with those values, then the VIP moves and the failed requests while nothing
is wrong, then a hard failure of the master LB: the client's outage and the VIP's move. The
namespace lab's benchmark (:mod:`halab.bench.benchmark`) measures the quiet part under a CPU hog and
load, the e2e run (:mod:`halab.e2e.run`) on quiet VMs; each says how it brings its lab to a
variant and measures it. The loop, the rows and the table are here, so both sweeps report
alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One point of a sweep: its name in the table and the config values it overrides."""

    label: str
    values: dict[str, Any] = field(default_factory=dict)


#: The figures every sweep measures, each a row's key with its column in the table.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("vip_moves", "VIP moves, nothing wrong"),
    ("failed", "failed requests, nothing wrong"),
    ("hard_failure_outage_s", "hard-failure outage (s)"),
    ("vip_move_s", "VIP move (s)"),
)


def run_sweep(
    variants: Iterable[Variant],
    measure: Callable[[Variant], dict[str, Any]],
    progress: Callable[[str], None],
) -> Iterator[dict[str, Any]]:
    """Each variant measured in turn, a line of progress after each: its row,
    ``{"variant": label, **values, **figures}`` (the figures: :data:`COLUMNS` and the caller's
    own), as soon as it is measured (an interrupted sweep keeps the rows it has)."""
    for variant in variants:
        row = {"variant": variant.label, **variant.values, **measure(variant)}
        progress(
            f"{row['variant']}: {row.get('vip_moves')} VIP moves, {row.get('failed')} failed "
            f"requests with nothing wrong; hard-failure outage {row.get('hard_failure_outage_s')} s"
        )
        yield row


def sweep_table(rows: Sequence[dict[str, Any]], extra: Sequence[tuple[str, str]] = ()) -> str:
    """A markdown table of the rows: the variant, :data:`COLUMNS`, then the caller's ``extra``
    columns (key, heading); a figure a row lacks is ``-``."""
    columns = (*COLUMNS, *extra)
    lines = [
        "| variant | " + " | ".join(heading for _, heading in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_cell(row.get(key)) for key, _ in columns]
        lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
