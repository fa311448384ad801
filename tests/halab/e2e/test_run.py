"""The e2e run without VMs: its bounds, its probe figures, its config sweeps and its retry."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult
from pytest import MonkeyPatch

from halab.e2e import run
from halab.e2e.timings import Step, Timings
from halab.model.drill_settings import TargetKind, drill_settings
from halab.model.stackconfig import read_stack
from halab.target.probe import OK, TIMEOUT, ProbeConfig, Sample


def test_serving_bound_is_haproxy_detection_plus_one_probe_request() -> None:
    # The e2e stack checks every 2000 ms and marks a server down after 3 failures, each timing
    # out after one interval: 8 s; one request may take up to the probe's timeout, and the next
    # one starts an interval later.
    settings = drill_settings(read_stack("e2e").spec(offline=True), TargetKind.VMS)
    assert (settings.health_check_interval_ms, settings.health_check_fall) == (2000, 3)
    probe = ProbeConfig("https://192.0.2.10/", interval=0.5, total_timeout=2.0)
    assert run.serving_bound_s(settings, probe) == 10.5


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

    def serving(row: Step) -> Any:
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
    assert (rows[0]["vip_moves"], rows[0]["failed"]) == (0, 0)
    assert (rows[1]["bfdIntervalMs"], rows[1]["vip_move_s"]) == ("100", 0.05)
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


def test_probe_figures_say_when_the_failed_requests_were_sent() -> None:
    samples = [
        Sample(seq=i, t=10.0 + i * 0.5, latency=0.01, outcome=TIMEOUT if i in {2, 5} else OK)
        for i in range(8)
    ]
    figures = run.probe_figures(samples)
    assert (figures["failed_from_s"], figures["failed_until_s"]) == (1.0, 2.5)
    assert figures["outcomes"] == {OK: 6, TIMEOUT: 2}
    assert run.probe_figures(samples[:2])["failed_from_s"] is None


def test_another_stack_runs_on_the_e2e_stack_s_machine_settings() -> None:
    overrides = run.machine_overrides(Path(run.REPO_ROOT) / "Pulumi.e2e.yaml")
    # The e2e stack's VMs, as this machine runs them; not its lab's shape.
    assert overrides["domainType"] == "qemu"
    assert overrides["installPackages"] == "false"
    assert overrides["defaultMemoryMib"] == "512"
    assert not {"edge", "zones", "hosts"} & set(overrides)


def test_a_machine_setting_is_one_value(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  ha-web-lab:vrrpRealtime: true\n  libvirt:uri: qemu:///x\n")
    assert run.machine_overrides(stack) == {"vrrpRealtime": "true"}
    stack.write_text("config:\n  ha-web-lab:sshPublicKeys: [a]\n")
    with pytest.raises(ValueError, match="sshPublicKeys"):
        run.machine_overrides(stack)


def test_the_dev_stack_brings_the_fortigate_stand_in() -> None:
    assert run.is_fortigate("dev")
    assert not run.is_fortigate("e2e")


def _fortigate_run(skip: list[str]) -> tuple[run.E2eRun, list[Any]]:
    e2e = run.E2eRun.__new__(run.E2eRun)
    args = argparse.Namespace(skip=skip)
    return e2e, run.fortigate_steps(e2e, args)


def test_the_fortigate_run_s_steps_in_order() -> None:
    _e2e, steps = _fortigate_run([])
    names = [getattr(s, "__name__", "lambda") for s in steps]
    assert names == [
        "prepare", "start_standin", "fortigate_up", "no_perpetual_diff", "<lambda>",
        "edge_ports_change", "allowed_sources_change", "destroy_fortigate",
    ]  # fmt: skip
    _e2e, fewer = _fortigate_run(["drill", "edge-sources"])
    assert [getattr(s, "__name__", "lambda") for s in fewer] == [
        "prepare", "start_standin", "fortigate_up", "no_perpetual_diff", "edge_ports_change",
        "destroy_fortigate",
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="scale-out"):
        _fortigate_run(["scale-out"])


def test_a_list_is_set_item_by_item_and_restored_as_it_was() -> None:
    e2e = run.E2eRun.__new__(run.E2eRun)
    stack = _FakeStack({"vip": "10.0.1.100", "edgeAllowedSources": '["0.0.0.0/0"]'})
    e2e.stack = stack  # type: ignore[assignment]
    e2e.set_list("edgePorts", [443])
    assert {k: v.value for k, v in stack.config.items() if "edgePorts" in k} == {
        "ha-web-lab:edgePorts[0]": "443"
    }
    original = stack.get_all_config()["ha-web-lab:edgeAllowedSources"]
    e2e.set_list("edgeAllowedSources", ["198.51.100.0/24", "192.0.2.0/24"])
    assert "ha-web-lab:edgeAllowedSources" not in stack.config  # the old value went first
    e2e.restore("edgeAllowedSources", original)
    assert stack.config["ha-web-lab:edgeAllowedSources[0]"].value == "0.0.0.0/0"
