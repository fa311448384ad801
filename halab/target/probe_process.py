"""The probe as a process: its command, its start, its end and its samples, for every target.

Both drill targets run ``python -m halab.target.probe`` as a child process and differ only in how
they start it and reach it: the namespace lab spawns it in the client namespace through its
tracked spawn (PID and start time go into the lab's state file, so ``lab down`` ends it even
after a crash), a lab of VMs starts it with :class:`subprocess.Popen` where the lab's bridges are
reachable. That difference is a :data:`Launcher` returning a :class:`ProcessHandle`; the rest is
:class:`ProbeProcess`. A probe is only ever signalled through the handle of the process that was
started, never looked up by name.

The probe prints ``started`` on stdout right before its first request; every launcher sends
stdout and stderr to the probe's log file, so one check works for both targets and a failure
quotes whatever the probe (or the launcher in front of it) said.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from halab.plumbing.process import popen_logged
from halab.target.probe import ProbeConfig, Sample, read_samples

#: Until the probe prints ``started``: an interpreter start, slow on a machine busy with VMs.
START_TIMEOUT_S = 10.0
#: After SIGTERM the probe ends its requests in flight (each bounded by its total timeout) and
#: writes its samples; this bound leaves room for a host whose cores are taken by emulated VMs.
STOP_TIMEOUT_S = 15.0
#: After SIGKILL, until the process is gone.
KILL_TIMEOUT_S = 5.0
POLL_S = 0.01
STARTED = "started"
_LOG_TAIL = 800


class ProcessHandle(Protocol):
    """The one process a :data:`Launcher` started, reached only through what started it."""

    @property
    def pid(self) -> int:
        """Its PID (for messages; signals go through the other methods)."""
        ...

    def alive(self) -> bool:
        """True while it runs."""
        ...

    def terminate(self) -> None:
        """SIGTERM, unless it has ended."""
        ...

    def kill(self) -> None:
        """SIGKILL, unless it has ended; returns once it is gone (a few seconds at most)."""
        ...

    def wait(self, timeout: float) -> bool:
        """Until it ends, ``timeout`` at most; True when it has."""
        ...


#: Starts ``argv`` with stdout and stderr appended to the log file; returns at once.
Launcher = Callable[[Sequence[str], Path], ProcessHandle]


class PopenHandle:
    """A :class:`ProcessHandle` over a child of this process (:class:`subprocess.Popen`)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @classmethod
    def start(
        cls, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None
    ) -> PopenHandle:
        """Start ``argv`` with stdout and stderr appended to ``log`` (a :data:`Launcher`)."""
        return cls(popen_logged(argv, log, env=env))

    @property
    def pid(self) -> int:
        """The child's PID."""
        return self.proc.pid

    def alive(self) -> bool:
        """True until the child has exited."""
        return self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM (Popen sends nothing once it has reaped the child, so no reused PID)."""
        self.proc.terminate()

    def kill(self) -> None:
        """SIGKILL, then wait until it is reaped."""
        self.proc.kill()
        self.wait(KILL_TIMEOUT_S)

    def wait(self, timeout: float) -> bool:
        """Until the child exits, ``timeout`` at most."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


def probe_command(
    cfg: ProbeConfig, duration: float, out: Path, python: str = sys.executable
) -> list[str]:
    """The command line of one probe run writing its samples to ``out``."""
    return [python, "-m", "halab.target.probe", *cfg.argv(duration, out)]


class ProbeProcess:
    """One run of :mod:`halab.target.probe` (a :class:`halab.target.protocol.ProbeRun`).

    :meth:`start` returns once it sends; :meth:`stop` ends it and returns every sample. Its two
    files (samples and log) live in the folder given to :meth:`start` and are removed by
    :meth:`stop`. Failures raise ``error``, the calling target's own error type, so each lab's
    command line reports them as it reports the rest of its errors.
    """

    def __init__(
        self,
        handle: ProcessHandle,
        out: Path,
        log: Path,
        error: type[Exception] = RuntimeError,
    ) -> None:
        self.handle = handle
        self.out = out
        self.log = log
        self.error = error

    @classmethod
    def start(
        cls,
        cfg: ProbeConfig,
        duration: float,
        workdir: Path,
        launch: Launcher,
        *,
        python: str = sys.executable,
        error: type[Exception] = RuntimeError,
        timeout: float = START_TIMEOUT_S,
    ) -> ProbeProcess:
        """Launch the probe with its files in ``workdir``; returns once it sends."""
        workdir.mkdir(parents=True, exist_ok=True)
        out = workdir / f"probe-{time.time_ns()}.jsonl"
        log = out.with_suffix(".log")
        handle = launch(probe_command(cfg, duration, out, python), log)
        probe = cls(handle, out, log, error)
        probe.wait_started(timeout)
        return probe

    def wait_started(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until the probe prints ``started`` (its first request goes out right after).

        A probe that ends first, or is still silent after ``timeout``, is killed, its files
        removed, and ``error`` raised with what it printed.
        """
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL_S) + 1):
            if self._started() or not self.handle.alive() or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        # Looked at once more: a short probe may print, finish and exit between two looks.
        if self._started():
            return
        what = "ended" if not self.handle.alive() else f"was silent for {timeout:g}s"
        self.handle.kill()
        tail = self._log_tail()
        self._remove_files()
        raise self.error(f"the probe (PID {self.handle.pid}) did not start, it {what}: {tail}")

    def wait(self, timeout: float) -> None:
        """Until the probe ends by itself (its request count or duration), ``timeout`` at most."""
        self.handle.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> list[Sample]:
        """SIGTERM (it finishes the requests in flight and writes its samples), wait ``timeout``
        at most, SIGKILL if it is still there; read the samples and remove both files.

        Raises ``error`` with the end of the probe's output when it left no readable samples.
        """
        self.handle.terminate()
        killed = not self.handle.wait(timeout)
        if killed:
            self.handle.kill()
        how = f"killed after {timeout:g}s of SIGTERM" if killed else "it ended"
        try:
            if not self.out.is_file():
                raise self.error(
                    f"the probe (PID {self.handle.pid}) wrote no samples ({how}): "
                    f"{self._log_tail()}"
                )
            try:
                return read_samples(self.out)
            except (ValueError, TypeError) as exc:  # cut short by the kill, or not a sample
                raise self.error(
                    f"the probe (PID {self.handle.pid}) left unreadable samples ({how}, {exc}): "
                    f"{self._log_tail()}"
                ) from exc
        finally:
            self._remove_files()

    def _started(self) -> bool:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return False
        return STARTED in text.splitlines()

    def _log_tail(self) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return "(no log)"
        return text[-_LOG_TAIL:] or "(no output)"

    def _remove_files(self) -> None:
        self.out.unlink(missing_ok=True)
        self.log.unlink(missing_ok=True)
