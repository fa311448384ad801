"""``virsh -c URI``: the one way the project asks a libvirtd something outside Pulumi (the VM
lab's faults, reclaiming leftovers, the networks ``make up`` must not collide with)."""

from __future__ import annotations

import subprocess

#: How long one call may take unless the caller says otherwise.
TIMEOUT_S = 120.0


class Virsh:
    """``virsh -q -c URI`` with a bound on every call."""

    def __init__(self, uri: str, timeout: float = TIMEOUT_S) -> None:
        self.uri = uri
        self.timeout = timeout

    def __call__(self, *args: str, check: bool = True, timeout: float | None = None) -> str:
        """Run it; stdout, or :class:`subprocess.CalledProcessError` (with virsh's stderr)
        when ``check``; :class:`subprocess.TimeoutExpired` past the bound."""
        done = subprocess.run(
            ["virsh", "-q", "-c", self.uri, *args],
            capture_output=True,
            text=True,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )
        return done.stdout

    def names(self, *args: str) -> set[str]:
        """One name a line of a listing command."""
        return {line.split()[0] for line in self(*args, check=False).splitlines() if line.strip()}
