"""The registry: every drill by name, one dispatch, bad names refused before anything runs."""

from __future__ import annotations

import inspect

import pytest

from halab.drills import registry
from halab.drills.core import DrillRun


def test_every_drill_is_a_function_of_one_run() -> None:
    for name, drill in registry.REGISTRY.items():
        assert drill.name == name
        (param,) = inspect.signature(drill.run).parameters.values()
        assert param.annotation in (DrillRun, "DrillRun"), name
    assert set(registry.ALL) | set(registry.EXTRA) == set(registry.REGISTRY)
    assert "web-hard-failure" in registry.ALL
    assert registry.ALL.index("lb-hard-failure") < registry.ALL.index("master-returns")


def test_an_unknown_drill_is_refused_before_any_runs() -> None:
    with pytest.raises(ValueError, match=r"'no-such-drill'.*round-robin"):
        registry.run_drills(object(), "dev", ["round-robin", "no-such-drill"])  # type: ignore[arg-type]
