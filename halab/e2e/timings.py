"""What the engine reported during an e2e run, and how long each step took.

:class:`EventLog` is the ``on_event`` callback of one Automation API operation: the steps the
engine took, when each resource's step began and ended, which failed, and from those each VM's
time from its domain's create to its readiness gate. :class:`Timings` is the run's table (one
row per step, ``ok`` or ``FAILED: ...``, with figures), written as text and JSON.
:func:`engine_errors` picks the engine's own error lines out of a failed operation, so what CI
prints explains the failure.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

#: The resource types whose events time a VM: its domain and its readiness gate.
DOMAIN = "libvirt:index/domain:Domain"
GATE = "command:remote:Command"


def engine_errors(exc: BaseException, limit: int = 30) -> list[str]:
    """The engine's own error lines of a failed operation.

    A :class:`auto.CommandError` carries the CLI's whole stdout and stderr; the engine writes a
    resource's failure to stdout (its Diagnostics), so stderr is often empty and its last line
    says nothing. CI shows only what the run prints, so these lines are what make a failure
    there readable without the report folder.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not isinstance(exc, auto.CommandError):
        return lines[:1] or [type(exc).__name__]
    # The labels CommandResult puts around the two streams carry nothing.
    lines = [line for line in lines if line not in ("stdout:", "stderr:")]
    errors = [line for line in lines if "error:" in line] or lines[-5:]
    return errors[:limit] or [type(exc).__name__]


def first_line(exc: BaseException) -> str:
    """The first engine error line of ``exc``, cut to 200 characters (a table cell)."""
    return engine_errors(exc, limit=1)[0][:200]


@dataclass
class Step:
    """One row of the timing table."""

    name: str
    seconds: float
    result: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timings:
    """Every step in order, written as a table and as JSON."""

    steps: list[Step] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a block; its row says ``ok`` or ``FAILED: ...``; figures go into the row."""
        row = Step(name, 0.0, "ok")
        start = time.monotonic()
        print(f"e2e: {name} ...", flush=True)
        try:
            yield row
        except BaseException as exc:
            row.result = f"FAILED: {first_line(exc)}"[:300]
            raise
        finally:
            row.seconds = round(time.monotonic() - start, 1)
            self.steps.append(row)
            print(f"e2e: {name}: {row.result} ({row.seconds} s)", flush=True)

    def info(self, name: str, seconds: float, **figures: Any) -> None:
        """A row that is a measurement inside another step."""
        self.steps.append(Step(name, round(seconds, 1), "info", figures))

    def table(self) -> str:
        """The rows as text, with the total."""
        lines = [f"{'step':<62} {'seconds':>8}  result"]
        for row in self.steps:
            lines.append(f"{row.name:<62} {row.seconds:>8}  {row.result}")
        lines.append(f"{'total':<62} {round(time.monotonic() - self.t0):>8}")
        return "\n".join(lines)

    def write(self, folder: Path, stack: str, passed: bool) -> None:
        """``timings.txt`` and ``timings.json`` in ``folder``."""
        (folder / "timings.txt").write_text(self.table() + "\n", encoding="utf-8")
        data = {
            "stack": stack,
            "passed": passed,
            "total_s": round(time.monotonic() - self.t0),
            "steps": [asdict(s) for s in self.steps],
        }
        (folder / "timings.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


@dataclass
class EventLog:
    """What the engine reported during one operation: steps (op, urn, type) and their times."""

    steps: list[tuple[str, str, str]] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    #: Print a line as each VM's domain or gate finishes (``up``), so a long step is not silent.
    progress: bool = False
    t0: float = field(default_factory=time.time)

    def __call__(self, event: auto.EngineEvent) -> None:
        """The ``on_event`` callback (times: when the event reached us, wall clock, as the
        probe's samples have them)."""
        now = time.time()
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            op = meta.op.value if hasattr(meta.op, "value") else str(meta.op)
            self.steps.append((op, meta.urn, meta.type))
            if op != "same":
                self.started.setdefault(meta.urn, now)
        elif event.res_outputs_event is not None:
            urn = event.res_outputs_event.metadata.urn
            self.finished[urn] = now
            vm_step = any(f"${kind}::" in urn for kind in (DOMAIN, GATE))
            if self.progress and vm_step and urn in self.started:
                print(f"e2e:   {urn.rsplit('::', 1)[-1]} done (+{now - self.t0:.0f} s)", flush=True)
        elif event.res_op_failed_event is not None:
            self.failed.append(event.res_op_failed_event.metadata.urn)

    def in_flight(self) -> list[str]:
        """The resources whose step began and has not ended, oldest first, with their age."""
        now = time.time()
        waiting = [
            (t, urn) for urn, t in self.started.items()
            if urn not in self.finished and urn not in self.failed
        ]  # fmt: skip
        return [
            f"{urn.rsplit('::', 1)[-1]} ({urn.split('::')[2].rsplit('$', 1)[-1]}): "
            f"running for {now - t:.0f} s"
            for t, urn in sorted(waiting)
        ]

    def vm_times(self) -> dict[str, float]:
        """Per VM whose domain was made in this operation: seconds from the domain's create (or
        replacement) to its gate passing."""
        out: dict[str, float] = {}
        for urn, t0 in self.started.items():
            # urn:pulumi:STACK::PROJECT::PARENT$...$TYPE::NAME; the gate is the domain's sibling.
            if not urn.endswith("-domain") or f"${DOMAIN}::" not in urn:
                continue
            gate = urn.replace(f"${DOMAIN}::", f"${GATE}::").removesuffix("-domain") + "-ready"
            if gate in self.finished:
                out[urn.rsplit("::", 1)[-1].removesuffix("-domain")] = self.finished[gate] - t0
        return out
