"""``make e2e``: the whole product on real VMs, through Pulumi's Automation API, then nothing left.

:mod:`halab.e2e.launch` builds (or reuses) the engine and the image, starts the project's
libvirtd and runs ``python -m halab e2e-run`` inside its network namespace, where the VMs are
reachable. This module is everything after that, on the registry's real plugins:

1. ``up`` of the e2e stack (lb-1, lb-2, web-1 and the Linux edge) until every gate passes, with
   each VM's time from its domain's creation to its gate passing (from the engine's events);
2. ``preview --expect-no-changes``, ``refresh``, and the same preview again: no perpetual diff;
3. the drill through the public IP (round robin, ``virsh destroy`` of the VIP holder, its return);
4. a scale-out by web-2: the preview's plan checked (only web-2 is created), ``up``, round robin;
5. a change that must replace one VM (web-1's memory) and one that gives it a new network
   config (its address): each plan checked (only web-1's VM is replaced), each ``up`` with the
   probe running through the public IP, which reports every failed request and fails the step
   when clients got no answer for longer than :func:`serving_bound_s` (every path down, not just
   the changed VM); the LBs' journals of each ``up`` are kept beside the probe's samples;
6. drift: web-1's domain destroyed and undefined behind Pulumi's back; ``refresh`` + ``up``
   bring it back and the gates pass;
7. an interrupted ``up`` (web-3): the CLI gets SIGINT while creating the domain, then SIGKILL;
   the next ``up`` converges after the lock, the pending creates and the leftovers are dealt
   with the way a user would (``cancel``, ``refresh --clear-pending-creates``,
   :mod:`halab.vmlab.reclaim`);
8. ``destroy``, then a check that no domain, network, pool, volume or bridge of the lab is left.

``--stack dev`` (``python -m halab e2e --edge fortigate``) runs the dev stack instead, whose edge
is a FortiGate, on the e2e stack's machine settings (:func:`machine_overrides`). The project's
FortiOS emulator plays the FortiGate on the lab's bridges (:mod:`halab.e2e.standin`): its
namespace and emulator first, then ``up``, during which the stand-in's legs join the zones'
bridges as soon as the networks exist (:meth:`E2eRun.attaching_standin`); then no perpetual
diff, the drill through the public IP (through the emulator's DNAT), ``edgePorts`` without 80
and back and
``edgeAllowedSources`` without the client and back (each with the probe running), ``destroy``,
no object of the lab left in the emulator and no DNAT, the stand-in gone, nothing of the lab left
(:func:`fortigate_steps`).

The checkout is never touched: the run works in a temporary copy of the project with a local
file backend, a throwaway passphrase and a throwaway SSH key. Every step's time and result go to
``timings.json``/``timings.txt`` in the report folder; a failure still destroys the stack (or
removes the lab's objects by name) before the exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from halab.drills import analysis
from halab.drills.baseline import BaselineError, measure
from halab.drills.sweep import Variant, run_sweep, sweep_table
from halab.e2e.check import check_args, check_deployed_lab, fastest_vm_probe
from halab.e2e.plan import PlanCheck, check_steps
from halab.e2e.standin import FortiGateStandIn, StandInError, standin_plan
from halab.e2e.timings import EventLog, Step, Timings, engine_errors, first_line
from halab.e2e.watchdog import OperationTimeoutError, OperationWatchdog
from halab.machine.engine import copy_project
from halab.model.drill_settings import DrillSettings, TargetKind, drill_settings
from halab.model.roles import Role
from halab.model.sections import EdgeKind
from halab.model.spec import LabSpec
from halab.model.stackconfig import stack_spec
from halab.plumbing.process import busy_loops
from halab.plumbing.roots import PROJECT
from halab.plumbing.tls import unverified_context
from halab.plumbing.virsh import Virsh
from halab.target.probe import OK, ProbeConfig, Sample, write_samples
from halab.vmlab.lab import VmLab, VmLabError
from halab.vmlab.reclaim import reclaim

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e"
#: Longest each kind of Pulumi operation may take before the run stops it (OperationWatchdog).
#: Measured here: a first `up` of 4 emulated VMs 195-367 s (the slow one on a loaded machine),
#: later `up`s 60-215 s, previews and refreshes under 30 s, destroy under 60 s.
OPERATION_TIMEOUT_S = {"up": 900.0, "preview": 300.0, "refresh": 300.0, "destroy": 600.0}
#: ``pulumi refresh --parallel``. The libvirt provider reads a CloudInitDisk by downloading its
#: ISO over a libvirt stream on the one connection every resource shares; a read of another
#: resource at the same moment can deadlock go-libvirt (digitalocean/go-libvirt#241: the reply
#: router holds the callback lock while it waits for a reader that is gone). Seen here: a
#: refresh of the e2e stack hung with a Domain read and a CloudInitDisk download stuck on that
#: lock, 127 kB unread on the socket. docs/troubleshooting.md tells users the same.
REFRESH_PARALLEL = 1
#: The libvirt provider (0.5.4) reads each seed ISO back over that connection on refresh; once
#: in four runs on 2026-12-05 the read came back cut short ("error while retrieving remote ISO:
#: error initializing ISO reader: corrupted-image: EOF"), right after web-1's seed was replaced,
#: and the stack was fine. A refresh that fails with it is run once more, and the table says so.
TRUNCATED_ISO = "error while retrieving remote ISO"
#: How long the probe may run during one change: the longest operation, plus margin.
PROBE_MAX_S = OPERATION_TIMEOUT_S["up"] + 120
#: The LBs' units whose journals a change keeps (what a rerun of setup may touch).
LB_UNITS = ("haproxy", "keepalived", "nftables")
#: What a run writes in its report folder (the previous run's files go first).
REPORT_PATTERNS = ("*.json", "*.jsonl", "*.png", "*.txt", "*.log")


class StepFailedError(RuntimeError):
    """A step's check did not hold; the message says which."""


def probe_figures(samples: Sequence[Sample]) -> dict[str, Any]:
    """What the client saw during a change: requests, failed ones, the outage, who answered."""
    seen = analysis.metrics(samples)
    failed = [s for s in samples if s.outcome != OK]
    start = min((s.t for s in samples), default=0.0)
    return {
        "requests": seen.requests,
        "failed": seen.failed,
        "outage_s": round(seen.outage_s, 3),
        "longest_silence_s": round(analysis.longest_silence(samples), 3),
        "backends": dict(seen.backends),
        "outcomes": dict(seen.outcomes),
        # When the failed requests were sent, from the probe's first request (s).
        "failed_from_s": round(min(s.t for s in failed) - start, 2) if failed else None,
        "failed_until_s": round(max(s.t for s in failed) - start, 2) if failed else None,
    }


def say_probe(label: str, probe: dict[str, Any]) -> None:
    """One line of what the probe saw during a change."""
    window = (
        f", failed ones sent {probe['failed_from_s']}..{probe['failed_until_s']} s into it"
        if probe.get("failed_from_s") is not None
        else ""
    )
    print(
        f"e2e: {label}: {probe['failed']} of {probe['requests']} requests failed "
        f"{probe.get('outcomes', {})}, longest silence {probe['longest_silence_s']} s{window}",
        flush=True,
    )


#: The keys of the e2e stack's file that give its lab its shape; every other key there is a
#: setting of this machine's VMs, which another stack's run takes over (:func:`machine_overrides`).
LAB_SHAPE_KEYS = frozenset({"edge", "zones", "hosts"})
#: How often the run looks for the zones' bridges while the first ``up`` runs.
BRIDGE_POLL_S = 0.1
#: The allowed sources of the change that leaves the client out (a documentation network).
NOT_THE_CLIENT = "198.51.100.0/24"


def config_text(value: Any) -> str:
    """A YAML scalar as ``pulumi config set`` takes it (``true``, not Python's ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def machine_overrides(stack_file: Path) -> dict[str, str]:
    """The e2e stack's settings of this machine's VMs (domain type, memory, the image's packages,
    timers and checks for emulated guests): every key of its file but the lab's shape."""
    raw = yaml.safe_load(stack_file.read_text(encoding="utf-8")).get("config") or {}
    out: dict[str, str] = {}
    for full_key, value in raw.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != PROJECT or key in LAB_SHAPE_KEYS:
            continue
        if isinstance(value, (dict, list)):
            raise ValueError(f"{stack_file.name}: {key} is not a machine setting of one value")
        out[key] = config_text(value)
    return out


def serving_bound_s(settings: DrillSettings, probe: ProbeConfig) -> float:
    """The longest silence a change of one VM may cause and the lab still counts as serving.

    The other web node serves throughout, so no client should wait longer than HAProxy takes to
    mark the gone node down (meanwhile retries and redispatch move requests), plus one probe
    timeout and the probe's next request. A longer silence means every path was down: the LBs,
    the VIP or the edge, not the VM that changed.
    """
    return round(settings.haproxy_node_down_s + probe.total_timeout + probe.interval, 3)


class E2eRun:
    """The run's state: the project copy, the stack, the libvirt URI, what to clean up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.uri: str = args.uri
        self.reports = Path(args.reports)
        self.keep: bool = args.keep
        #: The drills' probe at its shortest interval whatever the lab's pace (for comparison).
        self.fixed_probe: bool = args.fixed_probe
        self.timings = Timings()
        self.work = Path(tempfile.mkdtemp(prefix="hwl-e2e-"))
        self.project = self.work / "project"
        self.state = self.work / "state"
        self.key = self.work / "id_ed25519"
        self.image = {"baseImage": args.image, "kernel": args.kernel, "initrd": args.initrd}
        self.virsh = Virsh(self.uri)
        self.stack: auto.Stack | None = None
        self.env: dict[str, str] = {}
        #: The stack the run drives: ``e2e`` (the Linux edge), or one with ``edge: fortigate``
        #: (dev), whose FortiGate the stand-in plays (:mod:`halab.e2e.standin`).
        self.stack_name: str = getattr(args, "stack", STACK)
        self.lab_name = f"hwl-{self.stack_name}"
        #: The FortiGate stand-in, while it exists.
        self.standin: FortiGateStandIn | None = None
        #: Pulumi operations so far (numbers their logs in the reports).
        self.operations = 0

    # --- set-up ----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """A copy of the project, a local backend, a key, the stack with this machine's config."""
        copy_project(self.project, self.stack_name, REPO_ROOT)
        self.state.mkdir()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ha-web-lab-e2e", "-f",
             str(self.key)],
            check=True,
        )  # fmt: skip
        self.env = {
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
        }
        # The gates must use the stack's key, never an agent of whoever runs this.
        os.environ.pop("SSH_AUTH_SOCK", None)
        os.environ.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
        self.stack = auto.create_stack(
            self.stack_name,
            work_dir=str(self.project),
            opts=auto.LocalWorkspaceOptions(env_vars=self.env),
        )
        config = {
            "libvirtUri": auto.ConfigValue(self.uri),
            "storagePoolPath": auto.ConfigValue(str(self.work / "pool")),
            **{key: auto.ConfigValue(value) for key, value in self.image.items()},
            "sshPrivateKey": auto.ConfigValue(self.key.read_text(), secret=True),
        }
        if self.stack_name != STACK:
            # Another stack's lab on the e2e stack's machine settings (TCG, the image's
            # packages, memory, timers for emulated guests): its own shape, this machine's VMs.
            overrides = machine_overrides(REPO_ROOT / f"Pulumi.{STACK}.yaml")
            config.update({key: auto.ConfigValue(text) for key, text in overrides.items()})
        self.stack.set_all_config({f"{PROJECT}:{k}": v for k, v in config.items()})
        self.set("sshPublicKeys[0]", (self.key.with_suffix(".pub")).read_text().strip())
        self.lab_name = self.spec().lab_name

    def set(self, path: str, value: str) -> None:
        """``pulumi config set --path``."""
        assert self.stack is not None
        self.stack.set_config(f"{PROJECT}:{path}", auto.ConfigValue(value), path=True)

    # --- Pulumi operations -------------------------------------------------------------------

    def operation(self, kind: str, **kwargs: Any) -> EventLog:
        """One Pulumi operation (``up``, ``preview``, ``refresh``, ``destroy``), bounded by
        :data:`OPERATION_TIMEOUT_S`; the CLI's output goes to a numbered log in the reports, and
        what was still in flight at a timeout to ``timeout-NN-KIND.txt`` beside it."""
        assert self.stack is not None
        self.operations += 1
        tag = f"{self.operations:02d}-{kind}"
        log = EventLog(progress=kind == "up")
        call: Callable[..., Any] = getattr(self.stack, kind)
        if kind in ("up", "preview"):
            kwargs["on_event"] = log
        with (
            (self.reports / f"pulumi-{tag}.log").open("w", encoding="utf-8") as out,
            OperationWatchdog(
                f"pulumi {kind}",
                OPERATION_TIMEOUT_S[kind],
                on_expiry=lambda: self.report_in_flight(tag, log),
            ),
        ):
            call(on_output=lambda line: out.write(line.rstrip("\n") + "\n"), color="never",
                 **kwargs)  # fmt: skip
        return log

    def report_in_flight(self, tag: str, log: EventLog) -> None:
        """At a timeout: the steps still running and libvirt's view of the domains."""
        lines = [f"pulumi {tag}: still in flight at the deadline:", *log.in_flight()]
        try:
            lines += ["", "virsh list --all:", self.virsh("list", "--all").strip()]
        except (subprocess.SubprocessError, OSError) as exc:
            lines += ["", f"virsh list --all failed: {exc}"]
        text = "\n".join(lines) + "\n"
        (self.reports / f"timeout-{tag}.txt").write_text(text, encoding="utf-8")
        print(text, flush=True)

    def up(self) -> EventLog:
        """``pulumi up`` (no separate preview); the engine's events."""
        return self.operation("up")

    def preview(self, *, expect_no_changes: bool = False) -> EventLog:
        """``pulumi preview``; the planned steps."""
        return self.operation("preview", expect_no_changes=expect_no_changes)

    def refresh(self, **kwargs: Any) -> None:
        """``pulumi refresh``, one resource at a time (:data:`REFRESH_PARALLEL`); once more when
        the provider read a seed ISO cut short (:data:`TRUNCATED_ISO`), never more."""
        start = time.monotonic()
        try:
            self.operation("refresh", parallel=REFRESH_PARALLEL, **kwargs)
        except auto.CommandError as exc:
            if TRUNCATED_ISO not in str(exc):
                raise
            self.timings.info(
                "refresh failed: the provider read a seed ISO cut short; run again",
                time.monotonic() - start,
                error=first_line(exc),
            )
            print("e2e: refresh: the provider read a seed ISO cut short; once more", flush=True)
            self.operation("refresh", parallel=REFRESH_PARALLEL, **kwargs)

    def spec(self) -> LabSpec:
        """The stack's spec as the program gets it (``pulumi config``, defaults from Pulumi.yaml);
        secret values never enter it."""
        assert self.stack is not None
        config = {
            key: {"secret": True} if value.secret else {"value": value.value}
            for key, value in self.stack.get_all_config().items()
        }
        return stack_spec(self.stack_name, self.project, config)

    def lab(self) -> VmLab:
        """The drill target for the lab as deployed now."""
        return VmLab(
            self.spec(), ssh_key=self.key, workdir=self.work / "drill", libvirt_uri=self.uri
        )

    def check(self, steps: str, tag: str = "") -> None:
        """The drill of ``python -m halab check`` with these steps; reports beside the timings."""
        config = self.work / "config.json"
        assert self.stack is not None
        config.write_text(
            json.dumps({
                key: {"secret": True} if value.secret else {"value": value.value}
                for key, value in self.stack.get_all_config().items()
            }),
            encoding="utf-8",
        )  # fmt: skip
        argv = ["--stack", self.stack_name, "--pulumi-config", str(config),
                "--ssh-key", str(self.key), "--netns", "", "--out", str(self.reports),
                "--steps", steps,
                "--seed", "8"]  # fmt: skip
        if tag:
            argv += ["--tag", tag]
        if self.fixed_probe:
            argv.append("--fixed-probe")
        if check_deployed_lab(check_args(argv, self.project)) != 0:
            raise StepFailedError(f"the drill ({steps}) failed; see {self.reports}")

    @contextlib.contextmanager
    def serving(self, row: Step, max_s: float = PROBE_MAX_S) -> Iterator[ProbeConfig]:
        """The probe through the public IP while the block runs, sized by the lab's pace with
        nothing wrong (:mod:`halab.drills.baseline`); its figures go into ``row``."""
        lab = self.lab()
        fastest = fastest_vm_probe(lab.public_url)
        baseline = measure(lab, fastest)
        cfg = baseline.paced_probe(fastest)
        row.figures["baseline"] = baseline.to_json()
        row.figures["probe_interval_s"] = cfg.interval
        probe = lab.start_probe(cfg, duration=max_s)
        try:
            yield cfg
        finally:
            samples = probe.stop()
            row.figures["probe"] = probe_figures(samples)
            # Every request, so a failure can be laid beside the change's timeline.
            slug = "-".join(row.name.split(":")[0].split())
            write_samples(samples, self.reports / f"probe-{slug}.jsonl")
            lab.close()

    # --- the steps ---------------------------------------------------------------------------

    def judge(self, row: Step, log: EventLog, **expect: Iterable[str]) -> PlanCheck:
        """Check a preview's steps; the verdict goes into the row and the reports."""
        check = check_steps(log.steps, **expect)
        row.figures["plan"] = {"created": check.created, "replaced": check.replaced}
        (self.reports / f"plan-{row.name.split()[0]}.json").write_text(
            json.dumps(check.to_json(), indent=1), encoding="utf-8"
        )
        if not check.ok:
            raise StepFailedError("; ".join(check.problems))
        return check

    def first_up(
        self, around: Callable[[Step], contextlib.AbstractContextManager[None]] | None = None
    ) -> None:
        """Step 1: the lab from nothing to every gate passed (``around``: what else runs
        meanwhile)."""
        with self.timings.step("pulumi up (4 VMs, every gate passed)") as row:
            with around(row) if around is not None else contextlib.nullcontext():
                log = self.up()
            row.figures["vm_create_to_gate_s"] = {k: round(v, 1) for k, v in log.vm_times().items()}
        for vm, seconds in sorted(log.vm_times().items()):
            self.timings.info(f"  {vm}: domain created -> gate passed", seconds)

    def no_perpetual_diff(self) -> None:
        """Step 2: nothing to change, before and after a refresh."""
        assert self.stack is not None
        with self.timings.step("preview --expect-no-changes"):
            self.preview(expect_no_changes=True)
        with self.timings.step("refresh, then preview --expect-no-changes"):
            self.refresh()
            self.preview(expect_no_changes=True)

    def add_web_host(self, host: str) -> None:
        """One more web node at the end of ``hosts`` (no other host's address changes)."""
        index = len(self.spec().hosts)
        self.set(f"hosts[{index}].name", host)
        self.set(f"hosts[{index}].role", "web")

    def scale_out(self, host: str) -> None:
        """Step 4: one more web node; nothing else's VM changes."""
        with self.timings.step(f"scale-out: preview +{host}, plan checked") as row:
            self.add_web_host(host)
            self.judge(row, self.preview(), new_hosts=[host])
        with self.timings.step(f"scale-out: pulumi up (+{host})"):
            self.up()
        with self.timings.step(f"round robin across the web nodes (+{host})"):
            # Two web nodes now: one of them dies whole (its VM destroyed) and comes back.
            self.check("round-robin,web-hard-failure", tag="scaled")

    def replace_one_vm(self, label: str, host: str, changes: dict[str, str]) -> None:
        """Step 5: a change that must replace ``host``'s VM, served throughout by the others."""
        with self.timings.step(f"{label}: preview, plan checked") as row:
            for path, value in changes.items():
                self.set(path, value)
            self.judge(row, self.preview(), replaced_hosts=[host])
        with self.timings.step(f"{label}: pulumi up, probe running") as row:
            started = time.monotonic()
            try:
                with self.serving(row) as probe_cfg:
                    log = self.up()
            finally:
                # Whatever happened, what the LBs did while it happened.
                self.keep_lb_journals(label, time.monotonic() - started)
            row.figures["vm_create_to_gate_s"] = {k: round(v, 1) for k, v in log.vm_times().items()}
            # When each resource's step began and ended, beside the probe's samples.
            row.figures["steps_started"] = {
                u.rsplit("::", 1)[-1]: t for u, t in log.started.items()
            }
            row.figures["steps_finished"] = {
                u.rsplit("::", 1)[-1]: t for u, t in log.finished.items() if u in log.started
            }
            self.judge_serving(label, row, probe_cfg)

    def judge_serving(self, label: str, row: Step, probe_cfg: ProbeConfig) -> None:
        """Say what the probe saw during a change (:meth:`serving`'s figures in ``row``); fail
        the step when the lab did not answer for longer than :func:`serving_bound_s`."""
        probe = row.figures["probe"]
        say_probe(label, probe)
        bound = serving_bound_s(drill_settings(self.spec(), TargetKind.VMS), probe_cfg)
        row.figures["longest_silence_bound_s"] = bound
        if probe["longest_silence_s"] > bound:
            raise StepFailedError(
                f"{label}: no answer through the public IP for "
                f"{probe['longest_silence_s']} s (more than {bound} s): the change took the "
                f"whole lab down; see probe-*.jsonl and journal-*.txt in {self.reports}"
            )

    def keep_lb_journals(self, label: str, seconds: float) -> None:
        """The LBs' journals of the last ``seconds`` (plus a margin), one file per LB."""
        lab = self.lab()
        slug = "-".join(label.split())
        units = " ".join(f"-u {unit}" for unit in LB_UNITS)
        since = f"-{int(seconds) + 30}s"  # relative: the guests' clocks may be off the host's
        try:
            for host in lab.spec.plan.hosts_with_role(Role.LB):
                path = self.reports / f"journal-{slug}-{host.name}.txt"
                try:
                    text = lab.run(
                        host.name,
                        f"sudo journalctl --no-pager -o short-precise {units} --since {since}",
                        timeout=60,
                    )
                except VmLabError as exc:
                    text = f"journalctl failed: {exc}\n"
                path.write_text(text, encoding="utf-8")
        finally:
            lab.close()

    def advert_sweep(self, intervals_ms: Sequence[int], observe_s: float) -> None:
        """The benchmark of VRRP advert intervals (:meth:`config_sweep` of
        ``vrrpAdvertIntervalMs``)."""
        variants = [
            Variant(f"advert {ms} ms", {"vrrpAdvertIntervalMs": str(ms)}) for ms in intervals_ms
        ]
        self.config_sweep("advert-sweep", variants, observe_s)

    def fast_detection_sweep(self, bfd_intervals_ms: Sequence[int], observe_s: float) -> None:
        """Fast detection on emulated VMs: off (the stack as it is), then on at each BFD
        interval (:meth:`config_sweep`)."""
        variants = [Variant("fast detection off")]
        variants += [
            Variant(f"BFD {ms} ms", {"vrrpFastDetection": "true", "bfdIntervalMs": str(ms)})
            for ms in bfd_intervals_ms
        ]
        self.config_sweep("fast-detection-sweep", variants, observe_s)

    def config_sweep(self, name: str, variants: Sequence[Variant], observe_s: float) -> None:
        """A sweep (:mod:`halab.drills.sweep`) of the stack's config: per variant, ``up`` with those
        values, VIP moves with nothing wrong (spurious ones) while the probe runs for
        ``observe_s``, then the outage of a hard failure of the master and its return. The
        stack's own values are set back afterwards. Writes ``NAME.txt`` and ``NAME.json`` in the
        reports."""
        from halab.drills.core import VipWatcher

        assert self.stack is not None
        keys = sorted({key for variant in variants for key in variant.values})
        config = self.stack.get_all_config()
        original = {key: config.get(f"{PROJECT}:{key}") for key in keys}

        def measure(variant: Variant) -> dict[str, Any]:
            tag = "-".join(variant.label.split())
            label = f"{variant.label}: converge, observe {observe_s:.0f} s, crash"
            with self.timings.step(label) as row:
                for key in keys:
                    self.set_or_remove(key, variant.values.get(key, original[key]))
                self.up()
                lab = self.lab()
                try:
                    with (
                        VipWatcher(lab, interval=0.05, max_s=observe_s + 60) as watcher,
                        self.serving(row),
                    ):
                        time.sleep(observe_s)
                    moves = len([e for e in watcher.events if e.kind == "vip"])
                finally:
                    lab.close()
                self.check("lb-hard-failure,restore", tag=tag)
                crash = json.loads((self.reports / f"check-{tag}.json").read_text())
                hard = next(s for s in crash["steps"] if s["step"].startswith("lb-hard-failure"))
                figures = {
                    "vip_moves": moves,
                    "failed": row.figures["probe"]["failed"],
                    "hard_failure_outage_s": hard["figures"].get("outage_s"),
                    "vip_move_s": hard["figures"].get("vip_move_s"),
                }
                row.figures.update({"variant": variant.label, **variant.values, **figures})
            return figures

        rows = list(run_sweep(variants, measure, lambda line: print(f"e2e: {line}", flush=True)))
        with self.timings.step(f"{name}: the stack's own values again"):
            for key in keys:
                self.set_or_remove(key, original[key])
            self.up()
        table = sweep_table(rows)
        print(table, flush=True)
        (self.reports / f"{name}.txt").write_text(table + "\n", encoding="utf-8")
        (self.reports / f"{name}.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")

    def set_or_remove(self, key: str, value: auto.ConfigValue | str | None) -> None:
        """Set a key (a value read back from the stack, or a string), or remove it (None)."""
        assert self.stack is not None
        if value is None:
            if f"{PROJECT}:{key}" in self.stack.get_all_config():
                self.stack.remove_config(f"{PROJECT}:{key}")
        else:
            self.set(key, value.value if isinstance(value, auto.ConfigValue) else value)

    def drift(self, host: str) -> None:
        """Step 6: a VM removed behind Pulumi's back comes back with refresh + up."""
        assert self.stack is not None
        domain = f"{self.lab_name}-{host}"
        with self.timings.step(f"drift: virsh destroy + undefine {domain}, refresh, up") as row:
            self.virsh("destroy", domain)
            self.virsh("undefine", domain)
            self.refresh()
            log = self.up()
            row.figures["vm_create_to_gate_s"] = {k: round(v, 1) for k, v in log.vm_times().items()}
            if domain not in self.virsh.names("list", "--name"):
                raise StepFailedError(f"{domain} is not running after up")

    def interrupted_up(self, host: str) -> None:
        """Step 7: the CLI killed while it creates a domain; the next ``up`` converges."""
        self.add_web_host(host)
        with self.timings.step(f"interrupted up (+{host}): SIGINT, then SIGKILL") as row:
            row.figures.update(self.kill_up_while_creating(f"{self.lab_name}-{host}"))
        with self.timings.step("recover: cancel, refresh --clear-pending-creates, reclaim") as row:
            row.figures.update(self.recover())
        with self.timings.step(f"pulumi up after the interruption (+{host})"):
            self.up()
        with self.timings.step(f"round robin across the web nodes (+{host})"):
            self.check("round-robin", tag="recovered")

    def kill_up_while_creating(self, domain: str, timeout: float = 900.0) -> dict[str, Any]:
        """Run ``pulumi up`` as our own child; once libvirt has domain ``domain`` defined (the
        provider is creating it), SIGINT the CLI, and SIGKILL its process group 5 s later if
        it has not ended."""
        log = self.reports / "interrupted-up.log"
        with log.open("w", encoding="utf-8") as out:
            cli = subprocess.Popen(
                [
                    "pulumi",
                    "up",
                    "--yes",
                    "--skip-preview",
                    "--non-interactive",
                    "--stack",
                    self.stack_name,
                ],
                cwd=self.project,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        figures: dict[str, Any] = {}
        try:
            figures["domain_defined_after_s"] = round(
                self._wait_for_domain(domain, cli, timeout), 1
            )
            os.kill(cli.pid, signal.SIGINT)
            try:
                cli.wait(5.0)
                figures["ended_by"] = "SIGINT"
            except subprocess.TimeoutExpired:
                os.killpg(cli.pid, signal.SIGKILL)
                cli.wait(10.0)
                figures["ended_by"] = "SIGKILL"
        finally:
            if cli.poll() is None:
                os.killpg(cli.pid, signal.SIGKILL)
                cli.wait(10.0)
        figures["domains_defined"] = sorted(
            n for n in self.virsh.names("list", "--all", "--name") if n.startswith(self.lab_name)
        )
        return figures

    def _wait_for_domain(self, domain: str, cli: subprocess.Popen[bytes], timeout: float) -> float:
        """Seconds until libvirt lists ``domain`` (polled every 0.2 s, for ``timeout`` at most)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if cli.poll() is not None:
                raise StepFailedError(
                    f"pulumi up ended (exit {cli.returncode}) before {domain} was defined; "
                    f"see {self.reports / 'interrupted-up.log'}"
                )
            if domain in self.virsh.names("list", "--all", "--name"):
                return time.monotonic() - t0
            time.sleep(0.2)
        raise StepFailedError(f"{domain} was not defined within {timeout:.0f}s")

    def recover(self) -> dict[str, Any]:
        """What a user does after a killed ``up``, each step only when it is needed."""
        assert self.stack is not None
        figures: dict[str, Any] = {}
        locks = list((self.state / ".pulumi" / "locks").rglob("*.json"))
        if locks:
            # A file backend keeps the killed update's lock; `pulumi cancel` is for backends
            # that run updates themselves. The lock is ours (this run's own backend).
            try:
                self.stack.cancel()
                figures["lock"] = "pulumi cancel"
            except auto.CommandError as exc:
                for lock in locks:
                    lock.unlink()
                figures["lock"] = f"removed {len(locks)} stale lock file(s) ({first_line(exc)})"
        deployment = self.stack.export_stack().deployment or {}
        pending = [
            str((op.get("resource") or {}).get("urn", ""))
            for op in deployment.get("pending_operations") or []
        ]
        figures["pending_operations"] = [p.rsplit("::", 1)[-1] for p in pending]
        self.refresh(clear_pending_creates=True)
        figures["reclaimed"] = reclaim(
            self.uri, self.lab_name, self.stack.export_stack().deployment or {}
        )
        return figures

    # --- the FortiGate edge (a stack with edge: fortigate) ----------------------------------

    def start_standin(self) -> None:
        """The FortiGate's stand-in (:mod:`halab.e2e.standin`): its namespace and legs, the
        emulator listening on ``fortigateHost``; then the stack verifies the emulator's CA and
        uses its token."""
        plan = standin_plan(self.spec(), self.work / "fortigate")
        with self.timings.step(
            "FortiGate stand-in: namespace, legs, emulator (--apply-nft)"
        ) as row:
            standin = FortiGateStandIn(plan)
            standin.start()  # undoes what it made when it fails
            self.standin = standin
            row.figures.update(
                netns=plan.netns,
                listen=plan.hostname,
                legs={p.fortios: [p.outer, p.bridge, [str(a) for a in p.addresses]]
                      for p in plan.ports},
            )  # fmt: skip
        assert self.stack is not None
        self.stack.set_all_config({
            f"{PROJECT}:fortigateHost": auto.ConfigValue(plan.hostname),
            f"{PROJECT}:fortigateInsecure": auto.ConfigValue("false"),
            f"{PROJECT}:fortigateCaBundleFile": auto.ConfigValue(str(plan.ca_file)),
            f"{PROJECT}:fortigateToken": auto.ConfigValue(
                plan.token_file.read_text(encoding="utf-8").strip(), secret=True
            ),
        })  # fmt: skip

    @contextlib.contextmanager
    def attaching_standin(self, row: Step) -> Iterator[None]:
        """While the block runs (the first ``up``), the stand-in's legs join the zones' bridges
        the moment the networks have made them; when, or what went wrong, goes into ``row``.

        The FortiOS provider logs in when it is created, at the start of the ``up``, beside the
        networks; with no route to ``fortigateHost`` it retries for about a minute (measured
        here: it gave up after 66 s, the networks having been made in 0.5 s). So the stand-in
        answers well inside that minute, and the objects are made in the same ``up``.
        """
        standin = self.standin
        assert standin is not None
        done = threading.Event()
        seen: dict[str, Any] = {}

        def watch() -> None:
            start = time.monotonic()
            while not done.is_set():
                try:
                    if not standin.missing_bridges():
                        standin.attach()
                        seen["standin_attached_after_s"] = round(time.monotonic() - start, 2)
                        return
                except (StandInError, OSError) as exc:
                    seen["standin_attach_error"] = str(exc)
                    return
                done.wait(BRIDGE_POLL_S)

        thread = threading.Thread(target=watch, name="attach-standin", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(10.0)
            row.figures.update(seen)
        if "standin_attached_after_s" not in seen:
            raise StepFailedError(
                f"the stand-in never joined the bridges: {seen.get('standin_attach_error')}"
            )

    def fortigate_holds(self, *, ports: Iterable[int] | None = None) -> dict[str, Any]:
        """The emulator holds exactly the objects the spec names, and translates exactly the
        spec's ports of the public IP to the VIP (``ports``: what they must be)."""
        assert self.standin is not None
        spec = self.spec()
        names = spec.plan.fortios
        want = {name for _, name in names.objects}
        held = self.standin.objects()
        have = {name for found in held.values() for name in found}
        dnat = self.standin.dnat_ports()
        expected_ports = set(spec.edge.ports if ports is None else ports)
        if have != want:
            raise StepFailedError(
                f"the emulator holds {sorted(have)}, the spec names {sorted(want)}"
            )
        if dnat != expected_ports:
            raise StepFailedError(
                f"the stand-in translates ports {sorted(dnat)} to {spec.vip_address}, not "
                f"{sorted(expected_ports)}"
            )
        return {"objects": held, "dnat_ports": sorted(dnat)}

    def fortigate_up(self) -> None:
        """Step 1 of the FortiGate variant: the lab up and the FortiOS objects made, the
        stand-in joining the bridges as soon as they exist (the tier gate passes through the
        public IP, through the emulator's DNAT)."""
        self.first_up(around=self.attaching_standin)
        with self.timings.step("the emulator holds the spec's objects, its DNAT the ports") as row:
            row.figures.update(self.fortigate_holds())

    def set_list(self, key: str, values: Sequence[int | str]) -> None:
        """A list value, replacing what the key held: ``key[0]``, ``key[1]``... with ``--path``,
        which stores a number as a number (Pulumi.yaml types ``edgePorts`` as integers and
        refuses text)."""
        assert self.stack is not None
        if f"{PROJECT}:{key}" in self.stack.get_all_config():
            self.stack.remove_config(f"{PROJECT}:{key}")
        for index, value in enumerate(values):
            self.set(f"{key}[{index}]", str(value))

    def restore(self, key: str, original: auto.ConfigValue | None) -> None:
        """A key back to what it was: a list (its JSON text), another value, or not set."""
        if original is not None and original.value.lstrip().startswith("["):
            self.set_list(key, json.loads(original.value))
        else:
            self.set_or_remove(key, original)

    def public_answer(self, port: int, timeout: float = 5.0) -> str:
        """What a port of the public IP says to this client: an HTTP status, ``refused`` or
        ``timeout`` (443 speaks TLS, not verified: the lab's certificate is its own)."""
        import http.client

        host = str(self.spec().public_address)
        conn = (
            http.client.HTTPSConnection(host, port, timeout=timeout, context=unverified_context())
            if port == 443
            else http.client.HTTPConnection(host, port, timeout=timeout)
        )
        try:
            conn.request("GET", "/")
            return str(conn.getresponse().status)
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return f"error: {exc}"
        finally:
            conn.close()

    def edge_ports_change(self) -> None:
        """``edgePorts`` without 80, then back, each ``up`` with the probe on 443 running: the
        VIP of 80 goes and comes (the group and the policy stop naming it before its delete),
        HAProxy's bind with it, and 443 keeps answering."""
        assert self.stack is not None
        spec = self.spec()
        original = self.stack.get_all_config().get(f"{PROJECT}:edgePorts")
        kept = [p for p in spec.edge.ports if p != 80]
        if len(kept) == len(spec.edge.ports) or 443 not in kept:
            raise StepFailedError(f"edgePorts {list(spec.edge.ports)}: no 80 to drop beside 443")
        # (label, the change, the ports then, what port 80 of the public IP may answer then)
        changes: list[tuple[str, Callable[[], None], Sequence[int], set[str]]] = [
            ("edgePorts without 80", lambda: self.set_list("edgePorts", kept), kept, {"refused"}),
            ("edgePorts back", lambda: self.restore("edgePorts", original), spec.edge.ports,
             {"200", "301"}),
        ]  # fmt: skip
        for label, change, ports, port80 in changes:
            with self.timings.step(f"{label}: pulumi up, probe running") as row:
                change()
                with self.serving(row) as probe_cfg:
                    self.up()
                    row.figures.update(self.fortigate_holds(ports=ports))
                    answer = self.public_answer(80)
                    row.figures["port_80"] = answer
                self.judge_serving(label, row, probe_cfg)
                if answer not in port80:
                    raise StepFailedError(f"{label}: port 80 answered {answer}, not {port80}")

    def allowed_sources_change(self) -> None:
        """``edgeAllowedSources`` without this client, then back, with the probe running from
        before the first ``up`` to after the second: the client is dropped (the VIPs still
        translate; the policy no longer matches), then served again."""
        assert self.stack is not None
        original = self.stack.get_all_config().get(f"{PROJECT}:edgeAllowedSources")
        label = "edgeAllowedSources without the client, then back"
        with self.timings.step(f"{label}: 2 x pulumi up, probe running") as row:
            with self.serving(row):
                started = time.monotonic()
                self.set_list("edgeAllowedSources", [NOT_THE_CLIENT])
                self.up()
                row.figures["up_without_s"] = round(time.monotonic() - started, 1)
                row.figures["without"] = self.fortigate_holds()
                answer = self.public_answer(80, timeout=3.0)
                row.figures["port_80_without"] = answer
                if answer != "timeout":
                    raise StepFailedError(f"{label}: a client left out got {answer}, not dropped")
                started = time.monotonic()
                self.restore("edgeAllowedSources", original)
                self.up()
                row.figures["up_back_s"] = round(time.monotonic() - started, 1)
                row.figures["back"] = self.fortigate_holds()
                row.figures["served_again_after_s"] = self.wait_served(30.0)
            say_probe(label, row.figures["probe"])

    def wait_served(self, timeout: float) -> float:
        """Seconds until port 443 of the public IP answers 200 again (StepFailedError after
        ``timeout``)."""
        start = time.monotonic()
        answer = ""
        while time.monotonic() - start < timeout:
            answer = self.public_answer(443, timeout=3.0)
            if answer == "200":
                return round(time.monotonic() - start, 1)
            time.sleep(0.5)
        raise StepFailedError(f"the public IP's 443 said {answer}, not 200, for {timeout:.0f} s")

    def destroy_fortigate(self) -> None:
        """``destroy``, then no object of the lab in the emulator and no DNAT, then the
        stand-in stopped and nothing of the lab left."""
        self.destroy()
        assert self.standin is not None
        with self.timings.step("the emulator holds none of the lab's objects, no DNAT") as row:
            held = self.standin.objects()
            dnat = sorted(self.standin.dnat_ports())
            row.figures.update(objects=held, dnat_ports=dnat)
            if held or dnat:
                raise StepFailedError(f"left in the emulator: {held}, DNAT of ports {dnat}")
        with self.timings.step("FortiGate stand-in stopped, removed"):
            self.stop_standin()
        self.nothing_left()

    def stop_standin(self) -> None:
        """The stand-in gone (its files kept in the reports); StepFailedError when something
        of it is left."""
        if self.standin is None:
            return
        standin, self.standin = self.standin, None
        left = standin.stop()
        for path in (standin.plan.state_file, standin.plan.log_file,
                     standin.plan.folder / "fortigate.nft"):  # fmt: skip
            if path.is_file():
                shutil.copy(path, self.reports / f"fortigate-{path.name}")
        if left:
            raise StepFailedError(f"the stand-in left {left}")

    def destroy_and_check(self) -> None:
        """Step 8: destroy, and prove nothing of the lab is left."""
        self.destroy()
        self.nothing_left()

    def destroy(self) -> None:
        """``pulumi destroy``; the stack is gone (the clean-up has nothing to destroy)."""
        assert self.stack is not None
        with self.timings.step("pulumi destroy"):
            self.operation("destroy")
        self.stack = None

    def nothing_left(self) -> None:
        """No domain, network, pool, volume file, bridge or tap of the lab is left."""
        with self.timings.step("nothing left (virsh, pool folder, bridges)") as row:
            left = self.left_behind()
            row.figures["left"] = left
            if left:
                raise StepFailedError(f"left behind: {left}")

    def left_behind(self) -> list[str]:
        """Every object, volume file or bridge of the lab that still exists."""
        names = [
            *self.virsh.names("list", "--all", "--name"),
            *self.virsh.names("net-list", "--all", "--name"),
            *self.virsh.names("pool-list", "--all", "--name"),
        ]
        left = [n for n in names if n == self.lab_name or n.startswith(f"{self.lab_name}-")]
        pool = self.work / "pool"
        left += [str(p) for p in pool.glob("*")] if pool.exists() else []
        links = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
        ).stdout
        for line in links.splitlines():
            name = line.split(": ", 2)[1].split("@")[0] if ": " in line else ""
            if name.startswith(self.lab_name[:11]) or name.startswith("vnet"):
                left.append(f"link {name}")
        return left

    # --- clean-up ----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """On any exit: destroy what is still deployed, else remove the lab's objects by name."""
        if self.stack is not None:
            print(f"e2e: cleanup: pulumi destroy of the {self.stack_name} stack", flush=True)
            for lock in (self.state / ".pulumi" / "locks").rglob("*.json"):
                lock.unlink()
            try:
                self.refresh(clear_pending_creates=True)
                self.operation("destroy")
            except (auto.CommandError, OperationTimeoutError) as exc:
                print(f"e2e: cleanup: destroy failed ({first_line(exc)}): removing by name")
        for line in reclaim(self.uri, self.lab_name, {}):
            print(f"e2e: cleanup: {line}", flush=True)
        try:
            self.stop_standin()  # after the destroy, which needed it
        except (StepFailedError, StandInError, OSError) as exc:
            print(f"e2e: cleanup: {exc}", flush=True)
        if self.keep:
            print(f"e2e: kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    """Every step in order; 0 when all held. Clean-up runs whatever happens."""
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    for pattern in REPORT_PATTERNS:
        for old in reports.glob(pattern):
            old.unlink()
    e2e = E2eRun(args)
    passed = False
    # A TERM (halab.e2e.launch forwards its own) unwinds like Ctrl-C, so the clean-up below runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        fortigate = is_fortigate(e2e.stack_name)
        steps = fortigate_steps(e2e, args) if fortigate else linux_steps(e2e, args)
        # A slower machine on purpose, beside every step (none by default).
        with busy_loops(args.cpu_hogs, OPERATION_TIMEOUT_S["up"] * 8, reports / "cpu-hogs.log"):
            if args.cpu_hogs:
                e2e.timings.info(f"{args.cpu_hogs} busy loop(s) beside the VMs, all along", 0.0)
            for step in steps:
                step()
        passed = True
    except (
        StepFailedError,
        StandInError,
        VmLabError,
        BaselineError,
        OperationTimeoutError,
        auto.CommandError,
        subprocess.CalledProcessError,
    ) as exc:
        if isinstance(exc, auto.CommandError):
            (reports / "failed-command.txt").write_text(str(exc), encoding="utf-8")
            for line in engine_errors(exc):
                print(f"e2e: FAILED: {line}", file=sys.stderr, flush=True)
        else:
            print(f"e2e: FAILED: {exc}", file=sys.stderr, flush=True)
    finally:
        e2e.cleanup()
        e2e.timings.write(reports, e2e.stack_name, passed)
        print(e2e.timings.table(), flush=True)
    print(f"e2e: {'PASSED' if passed else 'FAILED'}; reports in {reports}", flush=True)
    return 0 if passed else 1


def is_fortigate(stack: str, project_dir: Path = REPO_ROOT) -> bool:
    """Whether the stack's edge is a FortiGate (the run then brings its stand-in)."""
    return stack_spec(stack, project_dir).edge.kind is EdgeKind.FORTIGATE


def fortigate_steps(e2e: E2eRun, args: argparse.Namespace) -> list[Callable[[], None]]:
    """The run of a stack with ``edge: fortigate`` (dev): the stand-in, the networks, ``up``,
    no perpetual diff, the drill, a change of ``edgePorts`` and of ``edgeAllowedSources``, each
    and back, ``destroy`` with nothing left in the emulator, then nothing of the lab."""
    optional: list[tuple[str, Callable[[], None]]] = [
        ("no-diff", e2e.no_perpetual_diff),
        ("drill", lambda: _timed(e2e, "drill (round robin, virsh destroy of the master, restore)",
                                 lambda: e2e.check("round-robin,lb-hard-failure,restore"))),
        ("edge-ports", e2e.edge_ports_change),
        ("edge-sources", e2e.allowed_sources_change),
    ]  # fmt: skip
    unknown = set(args.skip) - {name for name, _ in optional}
    if unknown:
        raise SystemExit(f"e2e: --skip {','.join(sorted(unknown))}: not a step of this run")
    return [
        e2e.prepare,
        e2e.start_standin,
        e2e.fortigate_up,
        *(step for name, step in optional if name not in args.skip),
        e2e.destroy_fortigate,
    ]


def linux_steps(e2e: E2eRun, args: argparse.Namespace) -> list[Callable[[], None]]:
    """The run of the e2e stack (the Linux edge): every step of the module's docstring."""
    web1 = "hosts[2]"  # Pulumi.e2e.yaml: lb-1, lb-2, web-1
    optional: list[tuple[str, Callable[[], None]]] = [
        ("no-diff", e2e.no_perpetual_diff),
        ("drill", lambda: _timed(e2e, "drill (round robin, virsh destroy of the master, restore)",
                                 lambda: e2e.check("round-robin,lb-hard-failure,restore"))),
        ("advert-sweep", lambda: e2e.advert_sweep(args.advert_sweep, args.observe_s)),
        ("fast-detection-sweep",
         lambda: e2e.fast_detection_sweep(args.fast_detection_sweep, args.observe_s)),
        ("scale-out", lambda: e2e.scale_out("web-2")),
        ("replace", lambda: e2e.replace_one_vm("web-1 memory", "web-1",
                                               {f"{web1}.memoryMib": "640"})),
        ("replace", lambda: e2e.replace_one_vm("web-1 network-config", "web-1",
                                               {f"{web1}.addresses.internal": "172.22.10.50"})),
        ("drift", lambda: e2e.drift("web-1")),
        ("interrupt", lambda: e2e.interrupted_up("web-3")),
    ]  # fmt: skip
    # The sweeps run only when asked for (their values are the list of what to measure).
    sweeps = {"advert-sweep": args.advert_sweep, "fast-detection-sweep": args.fast_detection_sweep}
    skip = set(args.skip) | {name for name, values in sweeps.items() if not values}
    return [
        e2e.prepare,
        e2e.first_up,
        *(step for name, step in optional if name not in skip),
        e2e.destroy_and_check,
    ]


def _timed(e2e: E2eRun, name: str, action: Callable[[], None]) -> None:
    with e2e.timings.step(name):
        action()
