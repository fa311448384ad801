"""``make up`` and ``make down``: from a bare machine to a lab that serves, and back to nothing.

What a newcomer has is often nothing: no libvirtd, no cloud image, no FortiGate, a ``/dev/kvm``
that may not run guests. What they have, they keep by config; what they lack, the project makes:

- **libvirt**: the stack's ``libvirtUri`` when it is set; else ``qemu:///system`` when a libvirtd
  answers there; else the project's own libvirtd (:mod:`halab.machine.libvirtd`: its own network and
  mount namespace, nothing of the host's libvirt touched), whose URI goes into the stack.
- **domain type**: the stack's ``domainType`` when set; else, for a libvirtd on this machine,
  what a tiny guest says (:mod:`halab.machine.kvm`): KVM only when guest code really runs on it.
- **image**: the stack's ``baseImage`` when set; else the project's image
  (:mod:`halab.machine.image`, cached), booted by its own kernel.
- **SSH**: your key (``~/.ssh/id_ed25519``, or ``HA_WEB_LAB_SSH_KEY``), or one made for the lab.

Then ``pulumi up`` (inside the libvirtd's namespace when it is the project's, where the lab's
bridges are), the outputs, the picture of the lab, the URL and one command that reaches it from
the user's shell. ``down`` destroys the stack, then stops the project's libvirtd if this stack
used it. Pulumi runs as the CLI, as a user would run it, with the environment of
:func:`halab.machine.engine.project_env` (the user's backend and passphrase, else local state and a
passphrase file; the built engine when no CLI is on PATH).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from halab.machine import engine, image, kvm, libvirtd
from halab.model.errors import ConfigError
from halab.model.spec import LabSpec
from halab.model.stackconfig import stack_file_keys
from halab.plumbing import hostdeps
from halab.plumbing.roots import PROJECT
from halab.plumbing.teller import teller
from halab.vmlab import neighbours

ROOT = Path(__file__).resolve().parent.parent
#: The network namespace of the project's libvirtd.
NETNS = libvirtd.netns_name()
DEFAULT_URI = "qemu:///system"
#: Emulated VMs share the host's cores: `make up` of the local stack (5 VMs) took 288 s on this
#: project's 2-core build machine, i.e. about 115 s of one core per VM; first `up`s of the e2e
#: stack (4 VMs) took 195-367 s there. The estimate is that, scaled to this machine's cores.
EMULATED_VM_CORE_S = 115


class UpError(RuntimeError):
    """A step of ``make up``/``make down`` that cannot go on; the message says what to do."""


#: Progress on stdout: the user reads every line of ``make up``.
say = teller("ha-web-lab", to_stdout=True)


def _run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    progress: bool = False,
    timeout: float = 120.0,
    secret_input: str | None = None,
) -> str:
    """Run a command; its stdout, or :class:`UpError` with the command's own last words.

    ``progress``: its stderr (where the scripts say what they do, and how long it takes) goes
    to the user as it comes, so a long step is not silent. ``secret_input`` goes to stdin
    (never argv, which any process can read); a command that gets one fails without its
    output, which might echo it.
    """
    done = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=None if progress else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
        input=secret_input,
    )
    if done.returncode != 0:
        tail = ((done.stderr or "") + (done.stdout or "")).strip().splitlines()[-3:]
        said = "(output withheld: it had a secret)" if secret_input else " / ".join(tail)
        raise UpError(f"{shlex.join(argv[:4])} failed ({done.returncode}): {said}")
    return done.stdout or ""


def pulumi_env() -> dict[str, str]:
    """The environment of every Pulumi run here (:func:`halab.machine.engine.project_env`), with the
    engine built first when there is no Pulumi CLI at all."""
    try:
        if shutil.which("pulumi") is None:
            # It says itself whether it builds (with its estimate) or finds the CLI cached.
            engine.build_cli()
        return engine.project_env()
    except engine.EngineError as exc:
        raise UpError(str(exc)) from exc


@dataclass
class Stack:
    """The Pulumi CLI on one stack of this project, with the project's environment."""

    name: str
    env: dict[str, str]

    def cli(self, *args: str, secret_input: str | None = None, timeout: float = 120.0) -> str:
        """``pulumi ARGS --stack NAME`` in the project folder (the flags before any ``--``)."""
        cut = args.index("--") if "--" in args else len(args)
        return _run(
            ["pulumi", *args[:cut], "--stack", self.name, "--cwd", str(ROOT), *args[cut:]],
            env=self.env,
            timeout=timeout,
            secret_input=secret_input,
        )

    def config(self) -> dict[str, Any]:
        """The settings the stack itself has (not Pulumi.yaml's defaults), secrets hidden."""
        raw = json.loads(self.cli("config", "--json"))
        own = stack_file_keys(self.name, ROOT)
        return {
            key: value
            for full, value in raw.items()
            if (key := full.removeprefix(f"{PROJECT}:")) in own
        }

    def set(self, key: str, value: str, *, path: bool = False) -> None:
        """``pulumi config set`` of a plain value (after ``--``: a value may start with -)."""
        flags = ["--plaintext", *(["--path"] if path else [])]
        self.cli("config", "set", *flags, "--", f"{PROJECT}:{key}", value)

    def set_secret(self, key: str, value: str) -> None:
        """``pulumi config set --secret``, the value on stdin."""
        self.cli("config", "set", "--secret", f"{PROJECT}:{key}", secret_input=value)


def libvirt_answers(uri: str) -> bool:
    """Whether a libvirtd answers at ``uri`` (``virsh version``, 20 s at most)."""
    if shutil.which("virsh") is None:
        return False
    try:
        done = subprocess.run(
            ["virsh", "-q", "-c", uri, "version"], capture_output=True, timeout=20, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def own_libvirtd_uri() -> str:
    """The URI the project's libvirtd has (whether it runs or not)."""
    return libvirtd.uri()


def is_local_uri(uri: str) -> bool:
    """A libvirtd on this machine (no host in the URI, no remote transport)."""
    parts = urlsplit(uri)
    return not parts.hostname and "+" not in parts.scheme


@dataclass(frozen=True)
class Hypervisor:
    """Where the lab goes: the URI, whether it is the project's libvirtd, the domain type."""

    uri: str
    ours: bool
    domain_type: str | None

    @property
    def netns(self) -> str | None:
        """The namespace the lab's bridges live in (None: this one)."""
        return NETNS if self.ours else None


def choose_hypervisor(config: Mapping[str, Any]) -> Hypervisor:
    """The user's libvirtd when there is one, else the project's (started here)."""
    own = own_libvirtd_uri()
    wanted = config.get("libvirtUri", {}).get("value")
    domain_type = config.get("domainType", {}).get("value")
    if wanted and wanted != own:
        if not libvirt_answers(wanted):
            raise UpError(
                f"libvirtUri {wanted}: no libvirtd answers there; start it, or "
                f"`pulumi config rm libvirtUri` to use this machine's (or the project's own)"
            )
        return Hypervisor(
            wanted, False, domain_type or (_chosen_domain_type() if is_local_uri(wanted) else None)
        )
    if not wanted and libvirt_answers(DEFAULT_URI):
        say(f"using the libvirtd at {DEFAULT_URI}")
        return Hypervisor(DEFAULT_URI, False, domain_type or _chosen_domain_type())
    hostdeps.require_root(
        f"no libvirtd answers at {DEFAULT_URI}, and the project's own needs root (`sudo make "
        "up`); or set libvirtUri to a libvirtd of yours",
        UpError,
    )
    domain_type = domain_type or _chosen_domain_type()
    say("starting the project's own libvirtd (python -m halab libvirtd start)")
    # KVM that ran the tiny guest is left visible to it; otherwise /dev/kvm is hidden.
    return Hypervisor(libvirtd.start(kvm=domain_type == "kvm"), True, domain_type)


def _chosen_domain_type() -> str:
    verdict = kvm.choose_domain_type()
    say(verdict.explain())
    return verdict.domain_type


def project_image(release: str) -> tuple[str, str, str]:
    """The project's image of ``release`` (empty: this machine's; built once, then cached):
    disk, kernel, initrd."""
    say("the project's image: building it unless cached (about 2 minutes from empty caches)")
    t0 = time.monotonic()
    try:
        disk, kernel, initrd = image.ensure(image.image(release=release or None))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # image.ImageError too
        raise UpError(f"the project's image: {exc}") from None
    say(f"image ready in {time.monotonic() - t0:.0f} s: {disk}")
    return str(disk), str(kernel), str(initrd)


def ensure_ssh_key(stack: Stack, config: Mapping[str, Any]) -> Path:
    """The gates log in over SSH: the stack's key, or the user's, or one made for the lab.
    Returns the private key file this machine uses (for the picture's question to the LBs)."""
    key = Path(os.environ.get("HA_WEB_LAB_SSH_KEY", Path.home() / ".ssh" / "id_ed25519"))
    keys = config.get("sshPublicKeys", {}).get("value") or ""
    if "ssh-" in str(keys):
        return key
    if not key.exists():
        say(f"making an SSH key for the lab: {key}")
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    stack.set("sshPublicKeys[0]", key.with_suffix(".pub").read_text().strip(), path=True)
    stack.set_secret("sshPrivateKey", key.read_text())
    return key


def reach_command(hv: Hypervisor, url: str) -> str:
    """One command that fetches ``url`` from the user's shell."""
    curl = f"curl -k {url}"
    if hv.netns is None:
        return curl
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}ip netns exec {hv.netns} {curl}"


def check_tools(config: Mapping[str, Any]) -> None:
    """What the providers need on this machine, and a local base image that exists."""
    # The provider makes cloud-init disks with mkisofs; genisoimage is the same program.
    if shutil.which("genisoimage") is None:
        hostdeps.require_tools(["mkisofs"], UpError)
    base = str(config.get("baseImage", {}).get("value") or "")
    if base and "://" not in base and not Path(base).is_file():
        raise UpError(
            f"baseImage {base}: no such file; set another with `pulumi config set baseImage "
            "PATH`, or `pulumi config rm baseImage` for the project's image"
        )


def up(stack_name: str) -> int:
    """Everything :mod:`halab.up` describes; returns the CLI's exit status."""
    env = pulumi_env()
    stack = Stack(stack_name, env)
    stack.cli("stack", "select", "--create")
    where = env.get("PULUMI_BACKEND_URL") or "the backend Pulumi.yaml names"
    say(f"stack {stack_name}, state in {where}")
    config = stack.config()
    # Bad config first, before anything is started or built: one line naming the key.
    first = _spec(stack, offline=False)
    check_tools(config)
    hv = choose_hypervisor(config)
    refuse_neighbours(first, hv.uri)
    if config.get("libvirtUri", {}).get("value") != hv.uri and hv.uri != DEFAULT_URI:
        stack.set("libvirtUri", hv.uri)
    if hv.domain_type and "domainType" not in config:
        stack.set("domainType", hv.domain_type)
    if "baseImage" not in config:
        disk, kernel, initrd = project_image(first.vm.image_release)
        stack.set("baseImage", disk)
        stack.set("kernel", kernel)
        stack.set("initrd", initrd)
        stack.set("installPackages", "false")  # the project's image has every role package
    key = ensure_ssh_key(stack, config)
    # A last check of the whole config, with the key and the hypervisor in: one line, nothing made.
    spec = _spec(stack, offline=False)
    say(f"pulumi up: it returns when every gate passed ({estimate(spec)})")
    argv = ["pulumi", "up", "--yes", "--stack", stack_name, "--cwd", str(ROOT)]
    if hv.netns:
        argv = ["ip", "netns", "exec", hv.netns, *argv]
    t0 = time.monotonic()
    rc = subprocess.run(argv, env=env, check=False).returncode
    if rc != 0:
        say(f"pulumi up failed ({rc}); fix what it says and run `make up STACK={stack_name}` again")
        return rc
    say(f"the lab is up in {time.monotonic() - t0:.0f} s")
    outputs = json.loads(stack.cli("stack", "output", "--json"))
    _picture(stack_name, spec, key)
    url = outputs.get("publicUrl") or f"https://{outputs.get('vip')}/"
    say(f"URL: {url}")
    say(f"try: {reach_command(hv, url)}")
    say(f"remove it all: make down STACK={stack_name}")
    return 0


def estimate(spec: LabSpec, cores: int | None = None) -> str:
    """How long the first ``up`` should take here, from what was measured (see the constant)."""
    vms = len(spec.plan.hosts)
    if spec.vm.domain_type.value != "qemu":
        return f"{vms} VMs on KVM: a few minutes"
    seconds = EMULATED_VM_CORE_S * vms / max(1, cores or os.cpu_count() or 1)
    return (
        f"{vms} emulated VMs: about {seconds / 60:.0f} minutes on {cores or os.cpu_count()} cores"
    )


def refuse_neighbours(spec: LabSpec, uri: str) -> None:
    """Stop before anything is made when a zone would take a bridge or a range another network
    of the hypervisor has (:mod:`halab.vmlab.neighbours`): one line naming both."""
    try:
        neighbours.refuse_clashes(spec, uri)
    except ConfigError as exc:
        raise UpError(exc.line()) from None
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        raise UpError(f"asking the libvirtd at {uri} for its networks: {exc}") from None


def _spec(stack: Stack, *, offline: bool) -> LabSpec:
    """The stack's spec as the program will see it (secrets only as 'set'); ``offline=False``
    also wants what a deployment needs (a FortiGate's token)."""
    from halab.model.stackconfig import stack_spec

    raw = json.loads(stack.cli("config", "--json"))
    try:
        return stack_spec(stack.name, ROOT, raw, offline=offline)
    except ConfigError as exc:
        raise UpError(exc.line()) from None


def _picture(stack_name: str, spec: LabSpec, key: Path) -> None:
    """The picture of the lab beside the reports, with the VIP's holder asked of the LBs (never
    fails the ``up``: it is a view)."""
    folder = ROOT / "reports" / stack_name
    try:
        from halab.render.picture import write_picture
        from halab.vmlab.lab import VmLabError, vip_holder

        try:
            holder = vip_holder(spec, key if key.is_file() else None, folder / ".work")
        except (VmLabError, OSError, subprocess.SubprocessError) as exc:
            say(f"could not ask the LBs who holds the VIP ({exc})")
            holder = None
        path = write_picture(spec, folder, vip_holder=holder)
    except (ImportError, OSError, RuntimeError) as exc:
        say(f"no picture of the lab ({exc})")
        return
    say(f"picture of the lab: {path} (again: python -m halab picture --stack {stack_name})")


def down(stack_name: str) -> int:
    """``pulumi destroy``, then the project's libvirtd if this stack used it."""
    env = pulumi_env()
    stack = Stack(stack_name, env)
    try:
        stack.cli("stack", "select")
    except UpError:
        say(f"no stack {stack_name}: nothing to remove")
        return 0
    uri = stack.config().get("libvirtUri", {}).get("value") or DEFAULT_URI
    ours = uri == own_libvirtd_uri()
    if ours and not libvirt_answers(uri):
        libvirtd.start()
    rc = subprocess.run(
        ["pulumi", "destroy", "--yes", "--stack", stack_name, "--cwd", str(ROOT)],
        env=env,
        check=False,
    ).returncode
    if rc != 0:
        say(f"pulumi destroy failed ({rc}): the project's libvirtd is left running for a retry")
        return rc
    # Nothing of the lab is left in the state either; its settings stay in Pulumi.<stack>.yaml.
    stack.cli("stack", "rm", "--yes", "--preserve-config")
    if ours:
        others = libvirt_objects(uri)
        libvirtd.stop()
        say("the project's libvirtd is stopped and its namespace removed")
        folder = libvirtd.folders().base
        if others:
            say(f"its folder {folder} stays: it still defines {', '.join(others[:5])}")
        elif folder.is_dir():
            # Definitions, logs and QEMU's capability cache: nothing of any lab is left in it.
            shutil.rmtree(folder)
            say(f"its folder {folder} is removed")
    say(f"stack {stack_name}: everything removed")
    return 0


def libvirt_objects(uri: str) -> list[str]:
    """Every domain, network and pool a libvirtd still defines (``kind name``)."""
    found: list[str] = []
    for kind, listing in (("domain", "list"), ("network", "net-list"), ("pool", "pool-list")):
        names = _run(["virsh", "-q", "-c", uri, listing, "--all", "--name"]).split()
        found += [f"{kind} {name}" for name in names]
    return found


def exec_pulumi(stack_name: str, args: Sequence[str]) -> int:
    """``pulumi ARGS --stack NAME`` in the project folder with the project's environment, the
    stack made when it is new (``python -m halab pulumi``, ``make preview``). The CLI replaces
    this process, so its exit status and its signals are the user's."""
    try:
        env = pulumi_env()
        Stack(stack_name, env).cli("stack", "select", "--create")
    except UpError as exc:
        print(f"ha-web-lab: {exc}", file=sys.stderr)
        return 1
    pulumi = shutil.which("pulumi", path=env.get("PATH"))
    assert pulumi is not None  # pulumi_env found it, or raised
    os.chdir(ROOT)
    os.execve(pulumi, ["pulumi", *args, "--stack", stack_name], env)  # noqa: S606 - the argv is ours, no shell


def up_or_down(action: str, stack_name: str) -> int:
    """``python -m halab up|down --stack NAME``: the exit status; a failure is one line."""
    try:
        return up(stack_name) if action == "up" else down(stack_name)
    except (UpError, libvirtd.LibvirtdError) as exc:
        print(f"ha-web-lab: {exc}", file=sys.stderr)
        return 1
