"""A namespace lab that is up for a test module and checked gone afterwards, whatever happens."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from halab.drills import registry, report
from halab.drills.core import DrillResult
from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab, require_packages
from halab.nslab.state import LabState
from halab.plumbing import hostdeps, netns, procs
from halab.target.probe import ProbeConfig

#: Where Keepalived keeps a namespace's run files (its children's pid files unless told).
KEEPALIVED_RUN = Path("/run/keepalived")


@contextlib.contextmanager
def running_lab(
    stack: str,
    overrides: dict[str, Any] | None = None,
    *,
    fortigate_emulator: bool = False,
    project_dir: Path = REPO_ROOT,
) -> Iterator[NamespaceLab]:
    """Bring the stack's lab up (with ``overrides`` of its values; ``fortigate_emulator`` and
    ``project_dir``: see :meth:`NamespaceLab.create`); on the way out take it down and fail if
    a namespace, a process, the run folder or a Keepalived run file of it is left."""
    hostdeps.require_root("the namespace lab tests make network namespaces", pytest.fail)
    require_packages(pytest.fail)
    if LabState.load(stack) is not None:
        NamespaceLab.attach(stack).down(lambda _m: None)  # a previous run's leftovers
    created = NamespaceLab.create(
        stack, project_dir, overrides=overrides, fortigate_emulator=fortigate_emulator
    )
    try:
        took = created.up(lambda _m: None)
        print(f"lab up in {took:.2f}s")
        yield created
    finally:
        started = [(p.pid, p.starttime) for p in created.state.processes]
        problems = created.down(lambda _m: None)
        assert not problems, problems
        prefix = created.spec.lab_name + "-"
        ours = [n for n in os.listdir(netns.NETNS_DIR) if n.startswith(prefix)]
        assert ours == [], f"namespaces left behind: {ours}"
        alive = [pid for pid, start in started if procs.alive(pid, start)]
        assert alive == [], f"processes left running: {alive}"
        assert not Path(created.state.run_dir).exists()
        left = sorted(str(p) for p in KEEPALIVED_RUN.glob(f"{prefix}*"))
        assert left == [], f"Keepalived run files left behind: {left}"


def passing_drills(lab: NamespaceLab, names: Sequence[str], reports: Path) -> list[DrillResult]:
    """Run drills on the lab (its stack's settings, the probe on its public URL), write each
    report under ``reports``, and fail naming the first drill whose checks did not all hold."""
    stack = lab.spec.stack
    results = registry.run_drills(lab, stack, names, probe=ProbeConfig(url=lab.public_url))
    for result in results:
        paths = report.write(result, reports)
        print(report.summary(result))
        assert result.passed, f"{result.name} failed; report: {paths['png']} / {paths['txt']}\n" + (
            report.summary(result)
        )
    return results
