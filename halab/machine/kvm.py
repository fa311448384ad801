"""Is KVM usable here? Asked the only way that answers truly: run a tiny guest on it.

``/dev/kvm`` existing, opening, even accepting a VM proves nothing: on some hosts (nested or
sandboxed) a VM is created and then no guest instruction ever runs, and a lab on ``domainType:
kvm`` would hang at boot with no error. So the probe boots a 512-byte boot sector under QEMU with
``-accel kvm``; the guest writes one byte to QEMU's ``isa-debug-exit`` port, which ends QEMU with
a known status. That status within the time bound means guest code ran on KVM; anything else
(no /dev/kvm, permission, a VM that never runs) means software emulation (``domainType: qemu``).
The same guest under ``-accel tcg`` is the probe's own self-test.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The I/O port QEMU's isa-debug-exit device listens on (its usual address).
DEBUG_EXIT_PORT = 0xF4
#: The byte the guest writes; QEMU then exits with status (byte << 1) | 1.
GUEST_BYTE = 0x2A
EXPECTED_STATUS = (GUEST_BYTE << 1) | 1
#: Iterations of the guest's countdown: enough work that running it natively (KVM) is clearly
#: faster than translating it (TCG), whatever the start-up costs of each.
LOOPS = 1 << 28
#: TCG ran the guest here in a few seconds: beyond this, nothing runs.
GUEST_TIMEOUT_S = 30.0
QEMU = "qemu-system-x86_64"


def boot_sector(loops: int = LOOPS) -> bytes:
    """A BIOS boot sector (loaded at 0x7c00, real mode) that counts ``loops`` down, writes
    :data:`GUEST_BYTE` to the debug-exit port and halts."""
    code = bytes([
        0x66, 0xB9, *loops.to_bytes(4, "little"),  # mov ecx, loops
        0x66, 0x49,  # dec ecx                      <- offset 6
        0x75, 0xFC,  # jnz offset 6
        0xB0, GUEST_BYTE,  # mov al, GUEST_BYTE
        0xE6, DEBUG_EXIT_PORT,  # out DEBUG_EXIT_PORT, al
        0xF4,  # hlt (QEMU has exited by now; this only keeps a stray CPU parked)
        0xEB, 0xFD,  # jmp back to hlt
    ])  # fmt: skip
    return code.ljust(510, b"\x00") + b"\x55\xaa"


@dataclass(frozen=True)
class GuestRun:
    """What the tiny guest did under one accelerator."""

    accel: str
    ran: bool
    seconds: float
    #: Why it did not run (QEMU's message, or the timeout), empty when it ran.
    reason: str = ""


def run_guest(accel: str = "kvm", timeout_s: float = GUEST_TIMEOUT_S, qemu: str = QEMU) -> GuestRun:
    """Boot the tiny guest with ``-accel accel``, for ``timeout_s`` at most (then killed)."""
    binary = shutil.which(qemu)
    if binary is None:
        return GuestRun(accel, False, 0.0, f"{qemu} is not installed (Debian: qemu-system-x86)")
    with tempfile.TemporaryDirectory(prefix="hwl-kvm-probe-") as tmp:
        disk = Path(tmp) / "boot.img"
        disk.write_bytes(boot_sector())
        argv = [
            binary, "-accel", accel, "-machine", "pc", "-m", "16", "-nodefaults",
            "-display", "none", "-no-reboot", "-monitor", "none", "-serial", "none",
            "-drive", f"file={disk},format=raw,if=ide,index=0",
            "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04",
        ]  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            return GuestRun(
                accel,
                False,
                round(time.monotonic() - t0, 2),
                f"the guest did not finish within {timeout_s:.0f} s",
            )
        seconds = round(time.monotonic() - t0, 2)
        if proc.returncode == EXPECTED_STATUS:
            return GuestRun(accel, True, seconds)
        message = out.decode(errors="replace").strip().splitlines()
        return GuestRun(
            accel,
            False,
            seconds,
            f"QEMU exited with {proc.returncode}: {message[-1] if message else 'no message'}",
        )


@dataclass(frozen=True)
class KvmVerdict:
    """The domain type to use, and the two runs it rests on."""

    domain_type: str
    kvm: GuestRun
    tcg: GuestRun

    def explain(self) -> str:
        """One line for the user."""
        if self.domain_type == "kvm":
            return (
                f"KVM runs guests here ({self.kvm.seconds} s against {self.tcg.seconds} s emulated)"
            )
        return f"KVM is not usable here ({self.kvm.reason}); software emulation (TCG) instead"


def choose_domain_type(qemu: str = QEMU) -> KvmVerdict:
    """``kvm`` when the guest runs on KVM faster than under emulation, else ``qemu``.

    The emulated run comes first: it proves the probe itself works, and sets the bound for the
    KVM run (a KVM that is slower than emulation, as the one on this project's build machines,
    which takes 8 s for the BIOS alone and never boots Linux, is no use to a lab).
    """
    tcg = run_guest("tcg", qemu=qemu)
    if not tcg.ran:
        raise RuntimeError(f"the KVM probe's own guest did not run under emulation: {tcg.reason}")
    kvm = run_guest("kvm", timeout_s=tcg.seconds + 10.0, qemu=qemu)
    if kvm.ran and kvm.seconds >= tcg.seconds:
        kvm = GuestRun("kvm", False, kvm.seconds, f"slower than emulation ({tcg.seconds} s)")
    return KvmVerdict("kvm" if kvm.ran else "qemu", kvm, tcg)
