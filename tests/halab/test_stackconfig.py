"""Which keys a stack file itself sets (``make up`` fills in only the others)."""

from __future__ import annotations

from pathlib import Path

from halab.stackconfig import stack_file_keys


def test_only_the_stack_files_own_keys_count() -> None:
    keys = stack_file_keys("local")
    assert {"edge", "hosts", "vrrpAdvertIntervalMs"} <= keys
    # Defaults of Pulumi.yaml (which `pulumi config --json` lists too) are not the stack's.
    assert not keys & {"libvirtUri", "domainType", "baseImage"}


def test_a_stack_without_a_file_sets_nothing(tmp_path: Path) -> None:
    assert stack_file_keys("nothing-here", tmp_path) == set()


def test_other_namespaces_are_not_the_labs(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  libvirt:uri: qemu:///system\n  ha-web-lab:edge: linux\n", encoding="utf-8"
    )
    assert stack_file_keys("x", tmp_path) == {"edge"}
