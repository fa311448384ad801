"""The KVM probe: its guest, its verdict (fake QEMUs), and the guest under real emulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from halab.machine import kvm


def test_the_guest_is_a_boot_sector_that_writes_the_byte_to_the_exit_port() -> None:
    sector = kvm.boot_sector(loops=5)
    assert len(sector) == 512 and sector[-2:] == b"\x55\xaa"
    assert sector[:6] == bytes([0x66, 0xB9, 5, 0, 0, 0])
    assert bytes([0xB0, kvm.GUEST_BYTE, 0xE6, kvm.DEBUG_EXIT_PORT]) in sector


def _fake_qemu(tmp_path: Path, kvm_body: str) -> str:
    """A stand-in QEMU: under tcg the guest 'runs' at once; under kvm, ``kvm_body``."""
    script = tmp_path / "fake-qemu"
    script.write_text(
        f"#!/bin/bash\nif [[ $2 == tcg ]]; then sleep 0.3; exit 85; fi\n{kvm_body}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def test_kvm_faster_than_emulation_is_chosen(tmp_path: Path) -> None:
    verdict = kvm.choose_domain_type(qemu=_fake_qemu(tmp_path, "exit 85"))
    assert verdict.domain_type == "kvm"
    assert "KVM runs guests here" in verdict.explain()


def test_kvm_that_never_runs_the_guest_means_emulation(tmp_path: Path) -> None:
    # The VM is created and nothing runs: the probe gives up at TCG's time plus 10 s.
    verdict = kvm.choose_domain_type(qemu=_fake_qemu(tmp_path, "exec sleep 60"))
    assert verdict.domain_type == "qemu"
    assert verdict.kvm.reason.startswith("the guest did not finish within 10 s")
    assert verdict.kvm.seconds < 15


def test_no_kvm_device_means_emulation_with_qemus_message(tmp_path: Path) -> None:
    fake = _fake_qemu(
        tmp_path, "echo 'Could not access KVM kernel module: No such file' >&2; exit 1"
    )
    verdict = kvm.choose_domain_type(qemu=fake)
    assert verdict.domain_type == "qemu"
    assert (
        verdict.kvm.reason == "QEMU exited with 1: Could not access KVM kernel module: No such file"
    )


def test_a_broken_probe_says_so_instead_of_guessing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not installed"):
        kvm.choose_domain_type(qemu=str(tmp_path / "no-such-qemu"))


def test_the_guest_runs_under_real_emulation() -> None:
    # qemu-system-x86 is in scripts/apt-packages.txt: the project installs it.
    result = kvm.run_guest("tcg")
    assert result.ran, result.reason
