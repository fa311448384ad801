"""``python -m halab check --stack STACK``: the failover drill against a deployed lab of VMs,
and the plan check of a saved ``pulumi preview --json`` (``python -m halab plan-check``).

The e2e run (:mod:`halab.e2e.run`) calls the same check between its steps, through
:func:`check_args`, so the drill a user runs by hand and the one CI runs are one code path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from halab.drills.baseline import Baseline, BaselineError, measure
from halab.drills.core import Bounds, DrillResult
from halab.e2e.plan import check_plan
from halab.model.spec import LabSpec
from halab.target.probe import ProbeConfig
from halab.vmlab import usage
from halab.vmlab.lab import VmLab, VmLabError, default_netns

#: The drills a check runs by default, in order (``restore`` brings the crashed LB back).
DEFAULT_STEPS = ("round-robin", "lb-hard-failure", "restore")


def default_key() -> Path | None:
    """``HA_WEB_LAB_SSH_KEY``, else ``~/.ssh/id_ed25519`` when it exists."""
    env = os.environ.get("HA_WEB_LAB_SSH_KEY")
    if env:
        return Path(env)
    key = Path.home() / ".ssh" / "id_ed25519"
    return key if key.is_file() else None


def read_stack_spec(stack: str, project_dir: Path, pulumi_config: Path | None) -> LabSpec:
    """The stack's spec: from ``pulumi config --json`` output when given, else the YAML files.

    ``pulumi config set`` rewrites the stack file with every value as a string (``"3"``), which
    the YAML reader does not coerce; ``pulumi config --json`` gives what the program gets.
    """
    from halab.model.stackconfig import stack_spec

    config = None if pulumi_config is None else json.loads(pulumi_config.read_text("utf-8"))
    return stack_spec(stack, project_dir, config)


def fastest_vm_probe(url: str, interval: float = 0.1) -> ProbeConfig:
    """The probe a drill on VMs starts from, before the lab's pace slows it
    (:meth:`halab.drills.baseline.Baseline.paced_probe`): TCG guests answer TLS in tens of ms,
    sometimes hundreds, so it is patient from the start."""
    return ProbeConfig(url=url, interval=interval, connect_timeout=1.0, total_timeout=2.0)


def vm_bounds(lab: VmLab, probe: ProbeConfig, baseline: Baseline) -> Bounds:
    """The pass/fail limits of the drills on VMs, from the configured timers and the probe.

    When the master dies, the client waits for the backup's takeover (its master-down timer and
    the skew: :attr:`~halab.model.sections.VrrpSpec.takeover_s`), for a request sent just before the
    takeover to time out, and for the probe's next request and its answer.
    """
    takeover = lab.settings.vrrp_takeover_s
    return Bounds(
        max_lb_outage_s=round(
            takeover + probe.total_timeout + 2 * probe.interval + baseline.p90_s, 3
        ),
        # One web node has nothing to alternate with.
        min_alternation=Bounds().min_alternation if len(lab.web_names) > 1 else 0.0,
    )


def describe(result: DrillResult) -> str:
    """A drill's summary, and where its time went on the VMs."""
    from halab.drills import report  # matplotlib: only when a drill ran

    text = report.summary(result)
    lab_usage = result.figures.get("lab_usage")
    return f"{text}\n  where the time went: {usage.summary_line(lab_usage)}" if lab_usage else text


def check_deployed_lab(args: argparse.Namespace) -> int:
    """Run the steps against the deployed lab; write the reports; 0 when every check held."""
    from halab.drills import registry, report
    from halab.drills.core import DrillRun, settle

    spec = read_stack_spec(
        args.stack,
        Path(args.project_dir),
        Path(args.pulumi_config) if args.pulumi_config else None,
    )
    out = Path(args.out or f"reports/check-{args.stack}")
    out.mkdir(parents=True, exist_ok=True)
    lab = VmLab(
        spec,
        ssh_key=Path(args.ssh_key) if args.ssh_key else default_key(),
        workdir=out / ".work",
        netns=args.netns if args.netns != "" else None,
    )
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s != "restore" and s not in registry.REGISTRY]
    if unknown:
        raise VmLabError(f"unknown step {unknown[0]!r} (drills: {', '.join(registry.REGISTRY)})")
    # The fastest probe a check starts from; the lab's own pace may slow it (below).
    fastest = fastest_vm_probe(lab.public_url, args.interval)
    results: list[DrillResult] = []
    summary: dict[str, Any] = {"stack": args.stack, "settings": asdict(lab.settings), "steps": []}
    ok = True
    try:
        lab.wait_backends(120.0)
        # What the lab serves with nothing wrong sizes the probe, so that the drills measure
        # the failover and not an overload of the probe's own making.
        baseline = measure(lab, fastest)
        probe = fastest if args.fixed_probe else baseline.paced_probe(fastest)
        summary["baseline"] = baseline.to_json()
        summary["probe"] = {"interval_s": probe.interval, "total_timeout_s": probe.total_timeout}
        print(
            f"baseline: {baseline.requests} requests one at a time, median "
            f"{1000 * baseline.p50_s:.0f} ms, p90 {1000 * baseline.p90_s:.0f} ms "
            f"(phases {baseline.phases_median_ms}); probe every {probe.interval} s, "
            f"timeout {probe.total_timeout} s",
            flush=True,
        )
        # Slow guests settle slowly: a minute for the VIP to stay put before each drill.
        run = DrillRun(
            lab,
            args.stack,
            vm_bounds(lab, probe, baseline),
            probe,
            random.Random(args.seed),  # noqa: S311 - a kill-phase jitter, not a secret
            settle_timeout_s=60.0,
            baseline=baseline,
        )
        for step in steps:
            t0 = time.monotonic()
            if step == "restore":
                # On VMs the crashed LB boots for minutes: restored outside any drill's probe.
                crashed = run.crashed
                if crashed is None:
                    continue
                lab.restore_host(crashed, timeout=float(args.restore_timeout))
                healthy = time.monotonic() - t0
                lab.wait_backends(120.0)
                holders = settle(lab, timeout=60.0)
                entry = {
                    "step": "restore",
                    "host": crashed,
                    "virsh_start_to_healthy_s": round(healthy, 1),
                    "vip_holder_after": holders,
                    "seconds": round(time.monotonic() - t0, 1),
                }
                print(f"restore: {crashed} healthy {healthy:.1f}s after virsh start; "
                      f"VIP on {holders}", flush=True)  # fmt: skip
                summary["steps"].append(entry)
                run.crashed = None
                continue
            before = lab.usage_snapshot()
            r = registry.run_drill(run, step)
            r.figures["lab_usage"] = usage.between(before, lab.usage_snapshot())
            if args.tag:
                r.name = f"{r.name}-{args.tag}"
            results.append(r)
            report.write(r, out)
            print(describe(r), flush=True)
            ok = ok and r.passed
            summary["steps"].append({
                "step": r.name, "passed": r.passed, "checks": r.checks,
                "figures": {k: v for k, v in r.figures.items() if k != "samples"},
                "seconds": round(time.monotonic() - t0, 1),
            })  # fmt: skip
    except (VmLabError, BaselineError) as exc:
        print(f"check: {exc}", file=sys.stderr)
        summary["error"] = str(exc)
        ok = False
    finally:
        lab.close()
    if results:
        index = out / (f"summary-{args.tag}.txt" if args.tag else "summary.txt")
        index.write_text("\n\n".join(describe(r) for r in results) + "\n", "utf-8")
    summary["passed"] = ok
    name = f"check-{args.tag}.json" if args.tag else "check.json"
    (out / name).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"check: {'PASSED' if ok else 'FAILED'}; reports in {out}")
    return 0 if ok else 1


def run_plan_check(args: argparse.Namespace) -> int:
    """Judge a ``pulumi preview --json`` file for a scale-out by ``--new-host``."""
    text = Path(args.preview).read_text(encoding="utf-8")
    check = check_plan(json.loads(text[text.find("{") :]), args.new_host)
    for kind, ops in sorted(check.ops.items()):
        print(f"  {kind:<45} " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items())))
    for problem in check.problems:
        print(f"plan-check: {problem}", file=sys.stderr)
    print(f"plan-check: {'OK' if check.ok else 'FAILED'}: created {len(check.created)}, "
          f"replaced {len(check.replaced)} ({', '.join(check.replaced) or 'none'})")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(check.to_json(), indent=1), encoding="utf-8")
    return 0 if check.ok else 1


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument("--out", default=None, help="report folder (default reports/check-STACK)")
    parser.add_argument("--ssh-key", default=None, help="private key (default ~/.ssh/id_ed25519)")
    parser.add_argument(
        "--netns",
        default=default_netns(),
        help="network namespace where the lab is reachable ('' for none; default: the "
        "project's libvirtd namespace when it exists)",
    )
    parser.add_argument(
        "--pulumi-config",
        default=None,
        help="a `pulumi config --json` file to read the stack from (default: the YAML files)",
    )
    parser.add_argument("--steps", default=",".join(DEFAULT_STEPS), help="comma-separated")
    parser.add_argument("--tag", default="", help="suffix of the report names")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.1,
        help="the probe's shortest interval (s); a slow lab gets a longer one",
    )
    parser.add_argument(
        "--fixed-probe",
        action="store_true",
        help="probe every --interval whatever the lab's pace (to see what a probe that "
        "overloads the lab does to the figures)",
    )
    parser.add_argument("--restore-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.set_defaults(func=check_deployed_lab)


def check_args(argv: Sequence[str], project_dir: Path) -> argparse.Namespace:
    """The arguments of ``check ARGV`` for a project folder, as :func:`check_deployed_lab`
    takes them."""
    parser = argparse.ArgumentParser(prog="check")
    _check_arguments(parser)
    args = parser.parse_args(argv)
    args.project_dir = str(project_dir)
    return args


def add_check_command(subparsers: Any) -> None:
    """Add ``check`` and ``plan-check`` to ``python -m halab`` (``subparsers`` from
    ``add_subparsers``)."""
    check = subparsers.add_parser(
        "check",
        help="run the failover drill against a deployed lab of VMs",
        description=(
            "Round robin through the public URL, a `virsh destroy` of the LB holding the VIP "
            "with the probe running (VIP move and outage measured), then `virsh start` and "
            "wait until it is healthy. Reports (JSON, PNG, text) go to --out."
        ),
    )
    _check_arguments(check)
    plan = subparsers.add_parser(
        "plan-check",
        help="judge a `pulumi preview --json` of a scale-out",
    )
    plan.add_argument("preview", help="the JSON file")
    plan.add_argument("--new-host", required=True)
    plan.add_argument("--out", default=None, help="write the verdict as JSON")
    plan.set_defaults(func=run_plan_check)
