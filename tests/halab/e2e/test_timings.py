"""The e2e run's bookkeeping: engine events to per-VM times, the timing table, the engine's
error lines (no VMs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult
from pytest import MonkeyPatch

from halab.e2e.timings import DOMAIN, GATE, EventLog, Timings, engine_errors, first_line

PREFIX = "urn:pulumi:e2e::ha-web-lab::ha-web-lab:index:HaWebLab$ha-web-lab:index:LabVm$"


def _event(kind: str, op: str, type_: str, name: str) -> auto.EngineEvent:
    meta = {"op": op, "urn": f"{PREFIX}{type_}::{name}", "type": type_, "provider": ""}
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": meta}})


def test_vm_times_run_from_the_domain_create_to_its_gate(monkeypatch: MonkeyPatch) -> None:
    clock = iter([10.0, 11.0, 12.0, 95.5, 130.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    log = EventLog()
    log(_event("resourcePreEvent", "create", DOMAIN, "lab-web-web-1-domain"))  # 10
    log(_event("resourcePreEvent", "same", DOMAIN, "lab-lb-lb-1-domain"))  # 11: not made
    log(_event("resourcePreEvent", "replace", DOMAIN, "lab-lb-lb-2-domain"))  # 12
    log(_event("resOutputsEvent", "create", GATE, "lab-web-web-1-ready"))  # 95.5
    log(_event("resOutputsEvent", "replace", GATE, "lab-lb-lb-2-ready"))  # 130
    assert log.vm_times() == {"lab-web-web-1": 85.5, "lab-lb-lb-2": 118.0}
    assert [op for op, _, _ in log.steps] == ["create", "same", "replace"]


def test_timings_table_and_json(tmp_path: Path) -> None:
    timings = Timings()
    with timings.step("pulumi up") as row:
        row.figures["vms"] = 4
    try:
        with timings.step("drill"):
            raise RuntimeError("VIP did not move\nmore")
    except RuntimeError:
        pass
    timings.info("  web-1: domain created -> gate passed", 71.04)
    timings.write(tmp_path, "e2e", passed=False)
    data: dict[str, Any] = json.loads((tmp_path / "timings.json").read_text())
    assert data["passed"] is False
    assert [(s["name"], s["result"]) for s in data["steps"]] == [
        ("pulumi up", "ok"),
        ("drill", "FAILED: VIP did not move"),
        ("  web-1: domain created -> gate passed", "info"),
    ]
    assert data["steps"][0]["figures"] == {"vms": 4}
    assert "total" in (tmp_path / "timings.txt").read_text()


def test_in_flight_lists_what_began_and_has_not_ended(monkeypatch: MonkeyPatch) -> None:
    clock = iter([10.0, 20.0, 30.0, 100.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    log = EventLog()
    log(_event("resourcePreEvent", "create", DOMAIN, "lab-web-web-1-domain"))  # 10
    log(_event("resourcePreEvent", "create", GATE, "lab-web-web-1-ready"))  # 20
    log(_event("resOutputsEvent", "create", DOMAIN, "lab-web-web-1-domain"))  # 30
    assert log.in_flight() == [f"lab-web-web-1-ready ({GATE}): running for 80 s"]  # at 100


def _command_error(stdout: str, stderr: str = "") -> auto.CommandError:
    return auto.CommandError(CommandResult(stdout=stdout, stderr=stderr, code=255))


def test_engine_errors_come_from_stdout_when_stderr_is_empty() -> None:
    # What CI printed of a failed `up`: "FAILED:  stderr:"; the engine's error was in stdout.
    exc = _command_error(
        "Updating (e2e):\n"
        "Diagnostics:\n"
        "  libvirt:index:Domain (lab-web-web-2):\n"
        "    error: error creating libvirt domain: boom\n"
        "  pulumi:pulumi:Stack (ha-web-lab-e2e):\n"
        "    error: update failed\n"
    )
    assert engine_errors(exc) == [
        "error: error creating libvirt domain: boom",
        "error: update failed",
    ]
    assert first_line(exc) == "error: error creating libvirt domain: boom"


def test_engine_errors_fall_back_to_the_last_lines_then_the_type() -> None:
    assert engine_errors(_command_error("a\nb\n", "c\n"))[-1] == "stderr: c"
    assert engine_errors(_command_error("", "")) == ["code: 255"]


def test_engine_errors_of_other_exceptions_is_their_first_line() -> None:
    assert engine_errors(RuntimeError("first\nsecond")) == ["first"]
    assert engine_errors(RuntimeError("")) == ["RuntimeError"]
