"""Processes the labs start: spawn through :mod:`halab.plumbing.nsexec`, find, signal, wait:
by PID.

A PID alone can be reused after the process dies, so every record keeps the process's start time
(``/proc/PID/stat`` field 22) and a signal is only ever sent when both still match. Nothing is
ever looked up or killed by name. Zombies count as gone: PID 1 in some sandboxes reaps orphans
late, and a zombie runs nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from halab.plumbing.process import popen_logged

NSEXEC = Path(__file__).resolve().parent / "nsexec.py"


@dataclass
class ProcRecord:
    """One process the lab started (or a child of one, found by parentage)."""

    pid: int
    starttime: int
    host: str
    name: str
    argv: list[str] = field(default_factory=list)
    log: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data for the state file."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcRecord:
        """Inverse of :meth:`to_json`."""
        return cls(**dict(data))


#: The inode of the initial PID namespace (the kernel's PROC_PID_INIT_INO, fixed since 3.8).
INITIAL_PID_NAMESPACE_INODE = 0xEFFFFFFC


def in_initial_pid_namespace() -> bool:
    """Whether this process sees the machine's own PIDs. Elsewhere (``unshare --pid``, as
    ``make fresh-test`` runs) the kernel ignores a request for process events (exits, forks),
    and any that still arrive carry the initial namespace's PIDs, not the ones seen here."""
    return os.stat("/proc/self/ns/pid").st_ino == INITIAL_PID_NAMESPACE_INODE


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a PID, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def starttime(pid: int) -> int:
    """Start time of a live PID in clock ticks since boot (0 when it is gone)."""
    st = _stat(pid)
    return st[2] if st else 0


def comm(pid: int, start: int) -> str | None:
    """The name a live process runs under (``/proc/PID/comm``), or None when it is gone."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return name if alive(pid, start) else None


def age_s(start: int) -> float:
    """Seconds since a process with ``start`` (clock ticks since boot, see :func:`starttime`)
    started, from /proc/uptime; works across processes, unlike a time kept in memory."""
    uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    return uptime - start / os.sysconf("SC_CLK_TCK")


def alive(pid: int, start: int) -> bool:
    """True while the PID still runs the process that started at ``start`` (zombies: gone)."""
    st = _stat(pid)
    return st is not None and st[2] == start and st[0] not in ("Z", "X")


def _live_table() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, starttime)} of every live process (one pass over /proc)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] not in ("Z", "X"):
                table[int(entry)] = (st[1], st[2])
    return table


def direct_children(pid: int) -> dict[int, int]:
    """{pid: starttime} of the live processes whose parent is ``pid``."""
    return {child: start for child, (ppid, start) in _live_table().items() if ppid == pid}


def children_of(pids: Iterable[int]) -> dict[int, int]:
    """Every live descendant of ``pids``: {pid: starttime} (one pass over /proc, to a fixpoint)."""
    parents = _live_table()
    wanted = set(pids)
    found: dict[int, int] = {}
    for _ in range(64):  # bounded: process trees here are two or three levels deep
        added = False
        for pid, (ppid, start) in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                found[pid] = start
                added = True
        if not added:
            break
    return found


def signal_pid(pid: int, start: int, sig: int) -> bool:
    """Send ``sig`` if the PID is still the recorded process; True when sent."""
    if not alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def reap(pid: int) -> None:
    """Collect our own child's exit status if it has one (no effect on others' children)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(targets: Sequence[tuple[int, int]], timeout: float) -> list[int]:
    """Wait until every (pid, starttime) is gone; returns the PIDs still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left = list(targets)
    while left:
        for pid, _ in left:
            reap(pid)
        left = [(p, s) for p, s in left if alive(p, s)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    return [p for p, _ in left]


def end(
    targets: Sequence[tuple[int, int]],
    term_timeout: float,
    kill_timeout: float,
    say: Callable[[str], None] | None = None,
) -> list[int]:
    """SIGTERM, wait up to ``term_timeout`` s, then SIGKILL what is left and wait
    ``kill_timeout`` s more; every signal by PID and start time. Returns the PIDs still alive
    (empty on success); ``say`` hears when KILL is needed."""
    if not targets:
        return []
    for pid, start in targets:
        signal_pid(pid, start, signal.SIGTERM)
    left = set(wait_gone(targets, term_timeout))
    if not left:
        return []
    if say is not None:
        say(f"still running after {term_timeout:.0f}s, sending KILL: {' '.join(map(str, left))}")
    stubborn = [(pid, start) for pid, start in targets if pid in left]
    for pid, start in stubborn:
        signal_pid(pid, start, signal.SIGKILL)
    return wait_gone(stubborn, kill_timeout)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt for the block, so cleanup code runs."""

    owner = os.getpid()

    def handler(signum: int, _frame: Any) -> None:
        if os.getpid() != owner:
            # A forked helper (pyroute2 forks to open sockets in a namespace and stops the
            # child with SIGTERM) inherits this handler: it must just exit, never run our cleanup.
            os._exit(128 + signum)
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def with_descendants(targets: Sequence[tuple[int, int]]) -> dict[int, int]:
    """``{pid: starttime}`` of the targets and every live descendant of theirs."""
    everything = dict(targets)
    everything.update(children_of(everything))
    return everything


def kill_tree(targets: Sequence[tuple[int, int]], timeout: float = 5.0) -> list[int]:
    """Hard stop: SIGSTOP every process and its descendants, then SIGKILL them all.

    Freezing first means no process of the set gets to react (a keepalived child that sees its
    parent die would otherwise send a priority-0 advert, which is a graceful stop, not a crash).
    Returns the PIDs still alive after ``timeout`` (empty on success).
    """
    everything = with_descendants(targets)
    for pid, start in everything.items():
        signal_pid(pid, start, signal.SIGSTOP)
    # Children forked between the scan and the freeze: one more scan while all are frozen.
    everything.update(children_of(everything))
    for pid, start in everything.items():
        signal_pid(pid, start, signal.SIGSTOP)
    for pid, start in everything.items():
        signal_pid(pid, start, signal.SIGKILL)
    return wait_gone(list(everything.items()), timeout)


@dataclass(frozen=True)
class PidHandle:
    """One process by PID and start time, as :class:`halab.target.probe_process.ProcessHandle`:
    what a drill helper the lab spawned (and recorded in its state file) is reached through."""

    pid: int
    starttime: int

    def alive(self) -> bool:
        """True while the PID still runs the process that started at ``starttime``."""
        return alive(self.pid, self.starttime)

    def terminate(self) -> None:
        """SIGTERM, unless it has ended."""
        signal_pid(self.pid, self.starttime, signal.SIGTERM)

    def kill(self) -> None:
        """Freeze and SIGKILL it with its descendants (:func:`kill_tree`, bounded)."""
        kill_tree([(self.pid, self.starttime)])

    def wait(self, timeout: float) -> bool:
        """Until it is gone, ``timeout`` at most; True when it is."""
        return not wait_gone([(self.pid, self.starttime)], timeout)


def stall_tree(targets: Sequence[tuple[int, int]], seconds: float) -> float:
    """SIGSTOP every process and its descendants, sleep ``seconds``, SIGCONT them all.

    A stalled host, not a dead one (a hypervisor's hiccup, a long GC): nothing is lost, it just
    says nothing for a while. Returns how long the set was really stopped (first STOP to last
    CONT), which the sleep only bounds from below.
    """
    everything = with_descendants(targets)
    start = time.monotonic()
    try:
        for pid, begun in everything.items():
            signal_pid(pid, begun, signal.SIGSTOP)
        time.sleep(seconds)
    finally:
        for pid, begun in everything.items():
            signal_pid(pid, begun, signal.SIGCONT)
    return time.monotonic() - start


def nsexec_argv(
    cmd: Sequence[str],
    *,
    net: str | None = None,
    binds: Sequence[tuple[str, str]] = (),
    chdir: str | None = None,
    user: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The launcher command line that runs ``cmd`` inside a host's namespaces."""
    argv = [sys.executable, "-I", "-S", str(NSEXEC)]
    if net:
        argv += ["--net", f"/run/netns/{net}"]
    for src, dst in binds:
        argv += ["--bind", f"{src}:{dst}"]
    if chdir:
        argv += ["--chdir", chdir]
    if user:
        argv += ["--user", user]
    for key, value in (env or {}).items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, "--", *cmd]


def spawn(argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None) -> int:
    """Start a process with output appended to ``log``; returns its PID at once.

    ``new_session``: a Ctrl-C in the terminal reaches the lab command, which then cleans up by
    PID, instead of hitting every daemon at once.
    """
    return popen_logged(argv, log, env=env, new_session=True).pid


def run(argv: Sequence[str], timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion (nft, sysctl, openssl), raising with its output."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise RuntimeError(f"{' '.join(argv[-4:])} failed ({done.returncode}): {output}")
    return done


def run_all(commands: Sequence[Sequence[str]], timeout: float = 20.0) -> None:
    """Run short commands side by side (one per host), raising if any fails."""
    started = [
        (
            cmd,
            subprocess.Popen(
                list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ),
        )
        for cmd in commands
    ]
    errors = []
    for cmd, proc in started:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            errors.append(f"{' '.join(cmd[-4:])}: timed out")
            continue
        if proc.returncode != 0:
            errors.append(f"{' '.join(cmd[-4:])} failed ({proc.returncode}): {output.strip()}")
    if errors:
        raise RuntimeError("; ".join(errors))
