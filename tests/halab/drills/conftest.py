"""Fixtures of the drill tests."""

from __future__ import annotations

import pytest

from tests.halab.drills.scripted import ScriptClock, use_script_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ScriptClock:
    """The script's clock, in place of every drill module's ``time`` for the test."""
    return use_script_clock(monkeypatch)
