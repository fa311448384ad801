"""The e2e run's own bookkeeping: engine events to per-VM times, the timing table (no VMs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult
from pytest import MonkeyPatch

from halab.drills.probe import OK, TIMEOUT, Sample
from halab.e2e import run
from halab.e2e.run import EventLog, Timings
from halab.stackconfig import read_stack

PREFIX = "urn:pulumi:e2e::ha-web-lab::ha-web-lab:index:HaWebLab$ha-web-lab:index:LabVm$"


def _event(kind: str, op: str, type_: str, name: str) -> auto.EngineEvent:
    meta = {"op": op, "urn": f"{PREFIX}{type_}::{name}", "type": type_, "provider": ""}
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, kind: {"metadata": meta}})


def test_vm_times_run_from_the_domain_create_to_its_gate(monkeypatch: MonkeyPatch) -> None:
    clock = iter([10.0, 11.0, 12.0, 95.5, 130.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    log = EventLog()
    log(_event("resourcePreEvent", "create", run.DOMAIN, "lab-web-web-1-domain"))  # 10
    log(_event("resourcePreEvent", "same", run.DOMAIN, "lab-lb-lb-1-domain"))  # 11: not made
    log(_event("resourcePreEvent", "replace", run.DOMAIN, "lab-lb-lb-2-domain"))  # 12
    log(_event("resOutputsEvent", "create", run.GATE, "lab-web-web-1-ready"))  # 95.5
    log(_event("resOutputsEvent", "replace", run.GATE, "lab-lb-lb-2-ready"))  # 130
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
    timings.write(tmp_path, passed=False)
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
    log(_event("resourcePreEvent", "create", run.DOMAIN, "lab-web-web-1-domain"))  # 10
    log(_event("resourcePreEvent", "create", run.GATE, "lab-web-web-1-ready"))  # 20
    log(_event("resOutputsEvent", "create", run.DOMAIN, "lab-web-web-1-domain"))  # 30
    assert log.in_flight() == [f"lab-web-web-1-ready ({run.GATE}): running for 80 s"]  # at 100


def test_serving_bound_is_haproxy_detection_plus_one_probe_timeout() -> None:
    # The e2e stack checks every 2000 ms and marks a server down after 3 failures: 6 s, and one
    # request may take up to the probe's 2 s timeout.
    spec = read_stack("e2e").spec(offline=True)
    assert (spec.haproxy.health_check_interval_ms, spec.haproxy.health_check_fall) == (2000, 3)
    assert run.serving_bound_s(spec) == 8.0


def test_probe_figures_report_the_longest_silence() -> None:
    samples = [
        Sample(seq=i, t=i * 0.1, latency=0.01, outcome=TIMEOUT if i in {3, 4} else OK)
        for i in range(8)
    ]
    figures = run.probe_figures(samples)
    assert figures["failed"] == 2
    assert figures["longest_silence_s"] == 0.2


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
    assert run.engine_errors(exc) == [
        "error: error creating libvirt domain: boom",
        "error: update failed",
    ]
    assert run._first_line(exc) == "error: error creating libvirt domain: boom"


def test_engine_errors_fall_back_to_the_last_lines_then_the_type() -> None:
    assert run.engine_errors(_command_error("a\nb\n", "c\n"))[-1] == "stderr: c"
    assert run.engine_errors(_command_error("", "")) == ["code: 255"]


def test_engine_errors_of_other_exceptions_is_their_first_line() -> None:
    assert run.engine_errors(run.StepFailedError("first\nsecond")) == ["first"]
    assert run.engine_errors(run.StepFailedError("")) == ["StepFailedError"]


class _FakeStack:
    """What config_sweep uses of an auto.Stack: config get, set and remove."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = {f"ha-web-lab:{k}": auto.ConfigValue(v) for k, v in config.items()}
        self.ups: list[dict[str, str]] = []

    def get_all_config(self) -> dict[str, auto.ConfigValue]:
        return dict(self.config)

    def set_config(self, key: str, value: auto.ConfigValue, path: bool = False) -> None:
        self.config[key] = value

    def remove_config(self, key: str) -> None:
        del self.config[key]


def test_fast_detection_sweep_sets_each_variant_then_the_stacks_own_values(
    monkeypatch: MonkeyPatch, tmp_path: Path
) -> None:
    from contextlib import nullcontext

    from halab.drills import core as drill_core

    e2e = run.E2eRun.__new__(run.E2eRun)
    e2e.reports, e2e.timings = tmp_path, Timings()
    stack = _FakeStack({"vrrpAdvertIntervalMs": "1000"})
    e2e.stack = stack  # type: ignore[assignment]
    seen: list[dict[str, str]] = []

    def up() -> None:
        seen.append({k.split(":")[1]: v.value for k, v in stack.config.items()})

    def check(steps: str, tag: str = "") -> None:
        step = {"step": "lb-hard-failure", "figures": {"outage_s": 0.04, "vip_move_s": 0.05}}
        (tmp_path / f"check-{tag}.json").write_text(json.dumps({"steps": [step]}))

    class _Watcher:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.events: list[Any] = []

        def __enter__(self) -> _Watcher:
            return self

        def __exit__(self, *exc: object) -> None: ...

    class _Lab:
        def close(self) -> None: ...

    def serving(row: run.Step) -> Any:
        row.figures["probe"] = {"failed": 0}
        return nullcontext()

    monkeypatch.setattr(e2e, "up", up, raising=False)
    monkeypatch.setattr(e2e, "check", check, raising=False)
    monkeypatch.setattr(e2e, "lab", _Lab, raising=False)
    monkeypatch.setattr(e2e, "serving", serving, raising=False)
    monkeypatch.setattr(drill_core, "VipWatcher", _Watcher)
    monkeypatch.setattr(time, "sleep", lambda _s: None)

    e2e.fast_detection_sweep([100, 50], observe_s=1.0)

    assert seen == [
        {"vrrpAdvertIntervalMs": "1000"},
        {"vrrpAdvertIntervalMs": "1000", "vrrpFastDetection": "true", "bfdIntervalMs": "100"},
        {"vrrpAdvertIntervalMs": "1000", "vrrpFastDetection": "true", "bfdIntervalMs": "50"},
        {"vrrpAdvertIntervalMs": "1000"},  # the keys the stack did not set are removed again
    ]
    rows = json.loads((tmp_path / "fast-detection-sweep.json").read_text())
    assert [r["variant"] for r in rows] == ["fast detection off", "BFD 100 ms", "BFD 50 ms"]
    assert rows[1]["hard_failure_outage_s"] == 0.04
    assert "BFD 50 ms" in (tmp_path / "fast-detection-sweep.txt").read_text()


def _refreshing(outcomes: list[BaseException | None]) -> tuple[run.E2eRun, list[str]]:
    """An E2eRun whose operations fail or pass in the given order, and the kinds it ran."""
    e2e = run.E2eRun.__new__(run.E2eRun)
    e2e.timings = Timings()
    ran: list[str] = []

    def operation(kind: str, **_kwargs: Any) -> None:
        ran.append(kind)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    e2e.operation = operation  # type: ignore[method-assign,assignment]
    return e2e, ran


def test_a_refresh_that_read_a_seed_iso_cut_short_runs_once_more_and_says_so() -> None:
    cut = _command_error(
        "  libvirt:index:CloudInitDisk (lab-web-web-1-seed):\n"
        "    error: sdk-v2/provider2.go:515: sdk.helper_schema: error while retrieving remote "
        "ISO: error initializing ISO reader: corrupted-image: EOF\n"
    )
    e2e, ran = _refreshing([cut, None])
    e2e.refresh()
    assert ran == ["refresh", "refresh"]
    (row,) = e2e.timings.steps
    assert (
        row.result == "info" and "cut short" in row.name and "corrupted-image" in str(row.figures)
    )
    # Never more than once, and never for another error.
    e2e, ran = _refreshing([cut, cut])
    with pytest.raises(auto.CommandError):
        e2e.refresh()
    assert ran == ["refresh", "refresh"]
    e2e, ran = _refreshing([_command_error("    error: something else\n")])
    with pytest.raises(auto.CommandError):
        e2e.refresh()
    assert ran == ["refresh"] and not e2e.timings.steps
