"""The benchmark: drills N times per stack, medians in a table, plus the advert-interval sweep.

Per run and stack: bring the lab up (timed), run round robin, app crash, the VRRP partition,
HAProxy death, hard failure of the master LB and its return, measure requests/s through the
public IP and straight to one web node (same lab, same minute), tear down. In the first run of
each stack, also the load run (``--load-run-seconds`` of requests with a CPU hog on every core:
VIP moves and failed requests). The table shows medians over the runs. ``--load-runs N`` adds N
load runs on one lab per column (``--realtime-both``: each column with and without
``vrrpRealtime``), with a table of how many were clean.

The sweep (``--sweep``) brings the lab up with other ``vrrpAdvertIntervalMs`` values, with and
without ``vrrpRealtime`` (overrides of the stack's values, in process: no stack files), runs the
request loop with a CPU hog on every core for ``--hog-seconds`` and counts VIP moves and failed
requests, then measures one hard failure of the master under the same hog.

Every figure printed is measured in this run; the JSON keeps every run's figures and the
reports' folder.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halab.drills import lb, load, registry, report
from halab.drills.core import Bounds, DrillResult, DrillRun
from halab.drills.sweep import Variant, run_sweep, sweep_table
from halab.model.errors import ConfigError
from halab.model.stackconfig import REPO_ROOT
from halab.nslab.lab import NamespaceLab, lab_spec, lab_values
from halab.nslab.state import LabState
from halab.nslab.throughput import throughput
from halab.plumbing.procs import signals_raise
from halab.target.probe import ProbeConfig

#: Partition runs while the higher-priority LB still holds the VIP (haproxy-death and the hard
#: failure move it to the peer, where nopreempt keeps it): the case where a stale ARP entry at
#: the edge would hurt the client.
DRILLS = (
    "round-robin",
    "app-crash",
    "partition",
    "haproxy-death",
    "lb-hard-failure",
    "master-returns",
)

#: With ``--fast-detection``, in both columns: what the setting may cost.
FAST_DETECTION_DRILLS = ("lb-stall", "bfd-loss")
#: The config keys the benchmark's columns override.
FAST = "vrrpFastDetection"
REALTIME = "vrrpRealtime"

#: Table rows: (label, drill name or "", figure key). Units are in the label.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("lab bring-up (s)", "", "bring_up_s"),
    ("LB hard failure: outage (ms)", "lb-hard-failure", "outage_ms"),
    ("LB hard failure: failed requests", "lb-hard-failure", "failed"),
    ("LB hard failure: VIP move (ms)", "lb-hard-failure", "vip_move_ms"),
    ("HAProxy death: VIP move (ms)", "haproxy-death", "vip_move_ms"),
    ("HAProxy death: outage (ms)", "haproxy-death", "outage_ms"),
    ("HAProxy death: failed requests", "haproxy-death", "failed"),
    ("app crash: failed requests", "app-crash", "failed"),
    ("app crash: outage (ms)", "app-crash", "outage_ms"),
    ("master returns: failed requests", "master-returns", "failed"),
    ("master stalls 50 ms: VIP moves", "lb-stall", "vip_moves"),
    ("master stalls 50 ms: failed requests", "lb-stall", "failed"),
    ("BFD lost, VRRP passing: VIP moves", "bfd-loss", "vip_moves_during_loss"),
    ("BFD lost: VIP moves once it is back", "bfd-loss", "vip_moves_after"),
    ("BFD lost: failed requests", "bfd-loss", "failed"),
    ("partition: both LBs claimed the VIP (1 = yes)", "partition", "both_claimed_vip"),
    ("partition: one VIP owner after healing (ms)", "partition", "single_owner_after_heal_ms"),
    ("partition: failed requests", "partition", "failed"),
    ("partition: failed after healing", "partition", "failed_after_heal"),
    ("load run, every core busy: VIP moves (run 1)", "load-run", "vip_moves"),
    ("load run, every core busy: failed requests (run 1)", "load-run", "failed"),
    ("load run: requests (run 1)", "load-run", "requests"),
    ("round robin: alternation", "round-robin", "alternation"),
    ("req/s through the public IP", "", "vip_rps"),
    ("req/s straight to one web node", "", "direct_rps"),
    ("ratio public IP / one web node", "", "ratio"),
    ("keepalived VRRP child killed (count)", "", "vrrp_child_kills"),
    ("BFD sessions expired, whole run with its drills (count)", "", "bfd_expiries"),
)


@dataclass
class RunFigures:
    """One run of one stack."""

    #: The table's column: the stack, with `` +fast detection`` for that variant.
    stack: str
    run: int
    figures: dict[str, float | None] = field(default_factory=dict)
    passed: dict[str, bool] = field(default_factory=dict)
    reports: str = ""


def _ms(value: Any) -> float | None:
    return None if value is None else round(1000 * float(value), 1)


def _flatten(results: Sequence[DrillResult]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for r in results:
        f = r.figures
        out[f"{r.name}.failed"] = float(f.get("failed", 0))
        out[f"{r.name}.outage_ms"] = _ms(f.get("outage_s"))
        if "vip_move_s" in f:
            out[f"{r.name}.vip_move_ms"] = _ms(f["vip_move_s"])
        if "alternation" in f:
            out[f"{r.name}.alternation"] = float(f["alternation"])
        if "single_owner_after_heal_s" in f:
            out[f"{r.name}.single_owner_after_heal_ms"] = _ms(f["single_owner_after_heal_s"])
        for key in (
            "both_claimed_vip",
            "failed_after_heal",
            "vip_moves",
            "requests",
            "vip_moves_during_loss",
            "vip_moves_after",
        ):
            if key in f:
                out[f"{r.name}.{key}"] = float(f[key])
    return out


def one_run(
    stack: str,
    run: int,
    out: Path,
    project_dir: Path,
    *,
    overrides: dict[str, Any] | None = None,
    label: str = "",
    load_seconds: float = 5.0,
    load_tool: str = "auto",
    load_run_seconds: float = 0.0,
    progress: Callable[[str], None] = print,
) -> RunFigures:
    """Bring a lab up, run the drills (and the load run when ``load_run_seconds``), measure the
    throughput pair, tear it down."""
    lab = NamespaceLab.create(stack, project_dir, overrides)
    label = label or stack
    fig = RunFigures(label, run)
    folder = out / f"{'-'.join(label.replace('+', '').split())}-run{run}"
    fig.reports = str(folder)
    try:
        bring_up = lab.up(lambda _m: None)
        fig.figures["bring_up_s"] = round(bring_up, 3)
        names = DRILLS + (("load-run",) if load_run_seconds > 0 else ())
        if overrides and "vrrpFastDetection" in overrides:
            names += FAST_DETECTION_DRILLS
        results = registry.run_drills(lab, stack, names, seed=run, load_seconds=load_run_seconds)
        for r in results:
            report.write(r, folder)
            fig.passed[r.name] = r.passed
        fig.figures.update(_flatten(results))
        tp = throughput(lab, duration=load_seconds, tool=load_tool)
        fig.figures["vip_rps"] = float(tp["vip"]["rps"])
        fig.figures["direct_rps"] = float(tp["direct"]["rps"])
        fig.figures["ratio"] = float(tp["ratio"])
        fig.figures["vrrp_child_kills"] = float(lab.vrrp_child_kills())
        fig.figures["bfd_expiries"] = float(lab.bfd_expiries())
    finally:
        lab.down(lambda _m: None)
    progress(
        f"  {label} run {run}: bring-up {fig.figures.get('bring_up_s')}s, "
        f"LB outage {fig.figures.get('lb-hard-failure.outage_ms')} ms, "
        f"app crash failed {fig.figures.get('app-crash.failed')}, "
        f"ratio {fig.figures.get('ratio')}"
    )
    return fig


def load_runs(
    stack: str,
    label: str,
    overrides: dict[str, Any],
    *,
    count: int,
    seconds: float,
    out: Path,
    project_dir: Path,
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``count`` load runs (requests plus a CPU hog on every core for ``seconds``) on one lab:
    a row each with its VIP moves and failed requests; clean means 5 out of 5."""
    lab = NamespaceLab.create(stack, project_dir, overrides)
    folder = out / f"{'-'.join(label.replace('+', '').split())}-load"
    rows: list[dict[str, Any]] = []
    try:
        lab.up(lambda _m: None)
        for run in range(1, count + 1):
            expiries = lab.bfd_expiries()
            (result,) = registry.run_drills(
                lab, stack, ["load-run"], seed=run, load_seconds=seconds
            )
            report.write(result, folder / f"run{run}")
            row = {
                "label": label,
                "run": run,
                "overrides": overrides,
                "seconds": seconds,
                "vip_moves": result.figures.get("vip_moves"),
                "failed": result.figures.get("failed"),
                "requests": result.figures.get("requests"),
                "passed": result.passed,
                "bfd_expiries": lab.bfd_expiries() - expiries,
                "reports": str(folder / f"run{run}"),
            }
            rows.append(row)
            progress(
                f"  {label} load run {run}: {row['vip_moves']} VIP moves, "
                f"{row['failed']}/{row['requests']} failed, {row['bfd_expiries']} BFD expiries"
            )
    finally:
        lab.down(lambda _m: None)
    return rows


def load_variants(
    variants: Sequence[tuple[str, str, dict[str, Any] | None]], realtime_both: bool
) -> list[tuple[str, str, dict[str, Any]]]:
    """The load runs' columns: each variant, and with ``realtime_both`` each with
    ``vrrpRealtime`` on and off."""
    if not realtime_both:
        return [(stack, label, dict(overrides or {})) for stack, label, overrides in variants]
    return [
        (stack, f"{label} realtime {'on' if rt else 'off'}", {**(overrides or {}), REALTIME: rt})
        for stack, label, overrides in variants
        for rt in (True, False)
    ]


def load_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of the load runs: per column, runs without a VIP move or failure."""
    labels = list(dict.fromkeys(r["label"] for r in rows))
    lines = [
        "| load runs | runs | clean (0 moves, 0 failed) | VIP moves per run | failed per run "
        "| BFD expiries per run |",
        "|---|---|---|---|---|---|",
    ]
    for label in labels:
        mine = [r for r in rows if r["label"] == label]
        clean = sum(1 for r in mine if r["vip_moves"] == 0 and r["failed"] == 0)
        moves = ", ".join(str(r["vip_moves"]) for r in mine)
        failed = ", ".join(f"{r['failed']}/{r['requests']}" for r in mine)
        expiries = ", ".join(str(r.get("bfd_expiries", "-")) for r in mine)
        lines.append(f"| {label} | {len(mine)} | {clean} | {moves} | {failed} | {expiries} |")
    return "\n".join(lines)


def advert_variants(intervals_ms: Sequence[int]) -> list[Variant]:
    """The sweep's variants: each advert interval (VRRPv3, which has adverts under a second)
    with ``vrrpRealtime`` on, then off."""
    return [
        Variant(
            f"advert {ms} ms, realtime {'on' if realtime else 'off'}",
            {"vrrpVersion": 3, "vrrpAdvertIntervalMs": ms, REALTIME: realtime},
        )
        for ms in intervals_ms
        for realtime in (True, False)
    ]


#: The sweep table's columns beyond the ones every sweep has.
SWEEP_EXTRA = (
    ("requests", "requests under load"),
    ("vrrp_child_kills", "VRRP child killed"),
    ("stable", "stable"),
)


def sweep_one(
    stack: str,
    variant: Variant,
    out: Path,
    *,
    project_dir: Path,
    hog_seconds: float,
    rng: random.Random,
) -> dict[str, Any]:
    """One variant of the stack, a lab of its own: VIP moves and failed requests under load and
    a CPU hog, then a hard failure under the same hog (a sweep's figures,
    :mod:`halab.drills.sweep`)."""
    lab = NamespaceLab.create(stack, project_dir, variant.values)
    folder = out / ("sweep-" + "-".join(variant.label.replace(",", "").split()))
    figures: dict[str, Any] = {}
    try:
        figures["bring_up_s"] = round(lab.up(lambda _m: None), 3)
        run = DrillRun(lab, stack, Bounds(), _default_probe(lab), rng, load_seconds=hog_seconds)
        loaded = load.load_run(run)
        report.write(loaded, folder)
        figures["vip_moves"] = loaded.figures["vip_moves"]
        figures["failed"] = loaded.figures["failed"]
        figures["requests"] = loaded.figures["requests"]
        # The same hog during a hard failure: does the short timer still hold its promise?
        with lab.cpu_hog(20.0):
            hard = lb.lb_hard_failure(run)
        report.write(hard, folder)
        figures["hard_failure_outage_s"] = hard.figures.get("outage_s")
        figures["hard_failure_failed"] = hard.figures.get("failed")
        figures["vip_move_s"] = hard.figures.get("vip_move_s")
        figures["vrrp_child_kills"] = lab.vrrp_child_kills()
        figures["stable"] = figures["vip_moves"] == 0 and figures["failed"] == 0
    finally:
        lab.down(lambda _m: None)
    figures["reports"] = str(folder)
    return figures


def _default_probe(lab: NamespaceLab) -> ProbeConfig:
    return ProbeConfig(url=lab.public_url)


def median_table(runs: Sequence[RunFigures], stacks: Sequence[str]) -> str:
    """A markdown table of medians, one column per stack."""
    head = "| figure (median of runs) | " + " | ".join(stacks) + " |"
    lines = [head, "|---|" + "---|" * len(stacks)]
    for label, name, key in ROWS:
        full = f"{name}.{key}" if name else key
        cells = []
        for stack in stacks:
            values = [
                v for r in runs if r.stack == stack and (v := r.figures.get(full)) is not None
            ]
            cells.append(f"{statistics.median(values):g}" if values else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    counts = {s: sum(1 for r in runs if r.stack == s) for s in stacks}
    lines.append("| runs | " + " | ".join(str(counts[s]) for s in stacks) + " |")
    return "\n".join(lines)


def fast_detection_variants(
    stacks: Sequence[str], both: bool, allows: Callable[[str], bool] = lambda _stack: True
) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(stack, column, overrides) per run of a stack: as configured, or fast detection off and on
    side by side (the same run, so the same machine load). A stack whose config refuses fast
    detection (``allows`` says no: the tutorial's preempt) runs with it off only."""
    if not both:
        return [(stack, stack, None) for stack in stacks]
    return [
        (stack, f"{stack}{' +fast detection' if on else ''}", {FAST: on})
        for stack in stacks
        for on in ((False, True) if allows(stack) else (False,))
    ]


def allows_fast_detection(stack: str, project_dir: Path = REPO_ROOT) -> bool:
    """Whether ``stack``'s config takes ``vrrpFastDetection: true`` (the spec refuses it with
    preempt, for one)."""
    values, secrets = lab_values(stack, project_dir)
    try:
        lab_spec(stack, values, secrets, {FAST: True})
    except ConfigError as exc:
        print(f"  {stack}: measured without fast detection only ({exc.line()})", flush=True)
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``lab bench`` and scripts/benchmark.py)."""
    parser.add_argument(
        "--stack",
        action="append",
        default=None,
        help="stack to measure (repeatable; default: dev and tutorial)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per stack (default 3)")
    parser.add_argument("--out", default=None, help="folder for the JSON and the drill reports")
    parser.add_argument("--load-seconds", type=float, default=5.0, help="per throughput side")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--sweep", action="store_true", help="also the advert-interval sweep under a CPU hog"
    )
    parser.add_argument(
        "--sweep-stack", default="dev", help="stack whose values the sweep overrides"
    )
    parser.add_argument(
        "--intervals",
        default="10,20,50,100",
        help="advert intervals for the sweep, ms, comma-separated",
    )
    parser.add_argument("--hog-seconds", type=float, default=60.0)
    parser.add_argument(
        "--load-run-seconds",
        type=float,
        default=60.0,
        help="the load run (requests + a CPU hog on every core), once per stack; 0 skips it",
    )
    parser.add_argument(
        "--no-drills", action="store_true", help="no drill runs (only the sweep or the load runs)"
    )
    parser.add_argument(
        "--load-runs",
        type=int,
        default=0,
        help="also N load runs of --load-run-seconds each, on one lab per column (default 0)",
    )
    parser.add_argument(
        "--realtime-both",
        action="store_true",
        help="the load runs' columns each with vrrpRealtime on and off",
    )
    parser.add_argument(
        "--fast-detection",
        action="store_true",
        help="run every stack twice, vrrpFastDetection off and on: one column each",
    )


def main_from_args(args: argparse.Namespace) -> int:
    """Run what the options say; print the tables; write JSON."""
    project_dir = Path(getattr(args, "project_dir", REPO_ROOT))
    stacks: list[str] = args.stack or ["dev", "tutorial"]
    out = Path(args.out or REPO_ROOT / "reports" / "bench" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    for stack in {*stacks, args.sweep_stack}:
        if LabState.load(stack) is not None:
            raise SystemExit(f"error: a lab for stack {stack!r} is up: run `lab down` first")
    variants = fast_detection_variants(
        stacks, args.fast_detection, lambda stack: allows_fast_detection(stack, project_dir)
    )
    runs: list[RunFigures] = []
    sweep: list[dict[str, Any]] = []
    loads: list[dict[str, Any]] = []
    started = time.time()
    try:
        with signals_raise():
            if not args.no_drills:
                for run in range(1, max(1, args.runs) + 1):
                    for stack, label, overrides in variants:
                        runs.append(
                            one_run(
                                stack,
                                run,
                                out,
                                project_dir,
                                overrides=overrides,
                                label=label,
                                load_seconds=args.load_seconds,
                                load_tool=args.load_tool,
                                # Once per stack: a minute of hog per run adds little.
                                load_run_seconds=args.load_run_seconds if run == 1 else 0.0,
                            )
                        )
            if args.load_runs > 0:
                # With --fast-detection, the load runs are what the setting must survive: its
                # column only (the standard timer's load runs are the drills' load run).
                loaded = [v for v in variants if not args.fast_detection or (v[2] or {}).get(FAST)]
                for stack, label, overrides in load_variants(loaded, args.realtime_both):
                    loads += load_runs(
                        stack,
                        label,
                        overrides,
                        count=args.load_runs,
                        seconds=args.load_run_seconds,
                        out=out,
                        project_dir=project_dir,
                    )
            if args.sweep:
                rng = random.Random(7)  # noqa: S311 - a kill-phase jitter, not a secret
                # Row by row: an interrupted sweep still writes the rows it measured.
                for row in run_sweep(
                    advert_variants([int(x) for x in args.intervals.split(",") if x]),
                    lambda variant: sweep_one(
                        args.sweep_stack,
                        variant,
                        out,
                        project_dir=project_dir,
                        hog_seconds=args.hog_seconds,
                        rng=rng,
                    ),
                    lambda line: print(f"  sweep {line}", flush=True),
                ):
                    sweep.append(row)
    finally:
        data = {
            "started": started,
            "finished": time.time(),
            "stacks": stacks,
            "runs": [r.__dict__ for r in runs],
            "sweep": sweep,
            "load_runs": loads,
        }
        (out / "benchmark.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    if runs:
        print()
        print(median_table(runs, [label for _, label, _ in variants]))
    if loads:
        print()
        print(load_table(loads))
    if sweep:
        print()
        print(sweep_table(sweep, SWEEP_EXTRA))
    print(f"\nJSON: {out / 'benchmark.json'}; drill reports under {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of scripts/benchmark.py."""
    parser = argparse.ArgumentParser(prog="scripts/benchmark.py", description=__doc__)
    parser.add_argument("--project-dir", default=str(REPO_ROOT))
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))
