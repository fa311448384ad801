"""``make up``'s choices, each from what the machine and the stack have (no libvirtd, no CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest import MonkeyPatch

from halab import up
from halab.machine import debian, image, kvm, libvirtd

OWN = "qemu:///system?socket=/root/.local/state/ha-web-lab/libvirtd/run/libvirt-sock"


@pytest.fixture
def machine(monkeypatch: MonkeyPatch) -> dict[str, Any]:
    """A machine whose libvirtds, KVM and root-ness the test sets; records what is started."""
    state: dict[str, Any] = {"answers": set(), "root": True, "kvm": "qemu", "started": []}
    monkeypatch.setattr(up, "own_libvirtd_uri", lambda: OWN)
    monkeypatch.setattr(up, "libvirt_answers", lambda uri: uri in state["answers"])
    monkeypatch.setattr("os.geteuid", lambda: 0 if state["root"] else 1000)
    probe = kvm.GuestRun("kvm", state["kvm"] == "kvm", 0.1)
    monkeypatch.setattr(
        kvm,
        "choose_domain_type",
        lambda: kvm.KvmVerdict(state["kvm"], probe, kvm.GuestRun("tcg", True, 1.0)),
    )

    def start(p: Any = None, *, kvm: bool | None = None) -> str:
        state["started"].append({"kvm": kvm})
        return OWN

    monkeypatch.setattr(libvirtd, "start", start)
    return state


def _value(value: str) -> dict[str, Any]:
    return {"value": value}


def test_a_libvirtd_at_the_default_uri_is_used_as_it_is(machine: dict[str, Any]) -> None:
    machine["answers"] = {up.DEFAULT_URI}
    hv = up.choose_hypervisor({})
    assert (hv.uri, hv.ours, hv.domain_type, hv.netns) == (up.DEFAULT_URI, False, "qemu", None)
    assert machine["started"] == []


def test_nothing_answering_starts_the_projects_libvirtd(machine: dict[str, Any]) -> None:
    hv = up.choose_hypervisor({})
    assert (hv.uri, hv.ours, hv.netns) == (OWN, True, up.NETNS)
    # The probe said emulation: /dev/kvm stays hidden from it.
    assert machine["started"] == [{"kvm": False}]


def test_kvm_that_runs_guests_is_handed_to_the_projects_libvirtd(machine: dict[str, Any]) -> None:
    machine["kvm"] = "kvm"
    hv = up.choose_hypervisor({})
    assert hv.domain_type == "kvm"
    assert machine["started"] == [{"kvm": True}]


def test_the_stacks_own_domain_type_wins_over_the_probe(machine: dict[str, Any]) -> None:
    machine["kvm"] = "kvm"
    assert up.choose_hypervisor({"domainType": _value("qemu")}).domain_type == "qemu"


def test_a_second_up_restarts_the_projects_libvirtd_by_its_uri(machine: dict[str, Any]) -> None:
    hv = up.choose_hypervisor({"libvirtUri": _value(OWN)})
    assert hv.ours and len(machine["started"]) == 1


def test_a_users_libvirt_uri_must_answer(machine: dict[str, Any]) -> None:
    with pytest.raises(up.UpError, match=r"libvirtUri qemu\+ssh://me@hv/system: no libvirtd"):
        up.choose_hypervisor({"libvirtUri": _value("qemu+ssh://me@hv/system")})
    machine["answers"] = {"qemu+ssh://me@hv/system"}
    hv = up.choose_hypervisor({"libvirtUri": _value("qemu+ssh://me@hv/system")})
    # A remote hypervisor: this machine's KVM says nothing about it.
    assert (hv.ours, hv.domain_type) == (False, None)


def test_without_root_and_without_a_libvirtd_the_message_says_sudo(
    machine: dict[str, Any],
) -> None:
    machine["root"] = False
    with pytest.raises(up.UpError, match="sudo make up"):
        up.choose_hypervisor({})


def test_the_reach_command_runs_in_the_labs_namespace_when_it_is_ours(
    machine: dict[str, Any],
) -> None:
    url = "https://203.0.113.10/"
    assert up.reach_command(up.Hypervisor(up.DEFAULT_URI, False, "kvm"), url) == f"curl -k {url}"
    ours = up.Hypervisor(OWN, True, "qemu")
    assert up.reach_command(ours, url) == f"ip netns exec {up.NETNS} curl -k {url}"
    machine["root"] = False
    assert up.reach_command(ours, url).startswith("sudo ip netns exec")


def test_local_uris() -> None:
    assert up.is_local_uri("qemu:///system") and up.is_local_uri(OWN)
    assert not up.is_local_uri("qemu+ssh://me@hv/system")
    assert not up.is_local_uri("qemu+tcp://10.0.0.5/system")


def test_a_missing_local_image_is_one_line(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    missing = tmp_path / "nope.qcow2"
    with pytest.raises(up.UpError, match=f"baseImage {missing}: no such file"):
        up.check_tools({"baseImage": _value(str(missing))})
    up.check_tools({"baseImage": _value("https://example.org/x.qcow2")})
    monkeypatch.setattr("shutil.which", lambda name, path=None: None)
    with pytest.raises(up.UpError, match=r"missing mkisofs: apt-get install .*genisoimage"):
        up.check_tools({})


def test_the_projects_image_comes_from_halab_image_and_its_refusal_is_one_line(
    monkeypatch: MonkeyPatch,
) -> None:
    built = (
        Path("/c/image/k/disk.qcow2"),
        Path("/c/image/k/vmlinuz"),
        Path("/c/image/k/initrd.img"),
    )
    asked: list[str] = []

    def ensure(img: image.Image) -> tuple[Path, Path, Path]:
        asked.append(img.suite)
        return built

    monkeypatch.setattr(image, "ensure", ensure)
    # The stack's imageRelease picks the release; empty is this machine's.
    assert up.project_image("trixie") == tuple(map(str, built))
    assert up.project_image("") == tuple(map(str, built))
    assert asked == ["trixie", debian.host_release()]

    def refuse(img: image.Image) -> None:
        raise image.ImageError("run as root (mmdebstrap's root mode keeps file owners)")

    monkeypatch.setattr(image, "ensure", refuse)
    with pytest.raises(up.UpError, match=r"^the project's image: run as root \(mmdebstrap"):
        up.project_image("")


def test_a_secret_goes_on_stdin_and_a_value_after_double_dash(monkeypatch: MonkeyPatch) -> None:
    calls: list[tuple[list[str], str | None]] = []

    def run(argv: list[str], **kwargs: Any) -> str:
        calls.append((list(argv), kwargs.get("secret_input")))
        return ""

    monkeypatch.setattr(up, "_run", run)
    stack = up.Stack("local", {})
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    stack.set_secret("sshPrivateKey", key)
    stack.set("kernelCmdline", "-quiet", path=False)
    (secret_argv, stdin), (plain_argv, _) = calls
    assert key not in " ".join(secret_argv) and stdin == key
    # The stack's flags come before `--`; after it only the key and the value.
    assert plain_argv[plain_argv.index("--") + 1 :] == ["ha-web-lab:kernelCmdline", "-quiet"]
    assert plain_argv.index("--stack") < plain_argv.index("--")


def test_the_estimate_follows_the_measurement_and_the_cores() -> None:
    from halab.model.stackconfig import read_stack

    spec = read_stack("local").spec(offline=True)
    assert len(spec.plan.hosts) == 5
    # 115 s of a core per emulated VM: 5 VMs on 2 cores is about 5 minutes (288 s measured).
    assert up.estimate(on(spec, "qemu"), 2) == "5 emulated VMs: about 5 minutes on 2 cores"
    assert "KVM" in up.estimate(on(spec, "kvm"), 2)


def on(spec: Any, domain_type: str) -> Any:
    """The spec with another ``domainType``."""
    vm = spec.vm.model_copy(update={"domain_type": kvm_type(domain_type)})
    return spec.model_copy(update={"vm": vm})


def kvm_type(value: str) -> Any:
    from halab.model.sections import DomainType

    return DomainType(value)


def test_a_fortigate_stack_without_its_token_is_refused_before_anything() -> None:
    from halab.model.errors import ConfigError
    from halab.model.stackconfig import read_stack, stack_spec

    # The tutorial's dev stack as `pulumi config --json` gives it, with no token set.
    values = read_stack("dev").values
    config = {f"ha-web-lab:{k}": {"objectValue": v} for k, v in values.items()}
    with pytest.raises(ConfigError, match=r"fortigateToken.*no API token is set"):
        stack_spec("dev", pulumi_config=config, offline=False)
    stack_spec("dev", pulumi_config=config)
