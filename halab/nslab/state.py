"""The lab's record of everything it created: a JSON file written after every change.

``/run/ha-web-lab/<stack>/state.json`` lists the namespaces, the processes (PID + start time), the
folders and the spec values the lab was built from. ``down`` (and the cleanup after a failure or
Ctrl-C) removes exactly what is listed, so a crash half-way through ``up`` leaves nothing behind
that the next ``down`` does not find.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halab.plumbing.procs import ProcRecord

RUN_ROOT = Path("/run/ha-web-lab")


def run_dir(stack: str) -> Path:
    """Where one stack's lab keeps its state, host trees and logs."""
    return RUN_ROOT / stack


@dataclass
class LabState:
    """What one lab created; mutate, then :meth:`save`."""

    stack: str
    lab_name: str
    values: dict[str, Any]
    secrets_present: list[str]
    run_dir: str
    created: float = 0.0
    ready: float = 0.0
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcRecord] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    #: Folders outside the run dir that a daemon creates (Keepalived's /run/keepalived/<netns>):
    #: removed at ``down`` only while empty, so nobody else's files go with them.
    empty_dirs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The edge namespace runs the FortiGate emulator in place of the Linux edge's rules.
    fortigate_emulator: bool = False

    @property
    def path(self) -> Path:
        """The state file."""
        return Path(self.run_dir) / "state.json"

    def save(self) -> None:
        """Write atomically (a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "stack": self.stack,
            "lab_name": self.lab_name,
            "values": self.values,
            "secrets_present": self.secrets_present,
            "run_dir": self.run_dir,
            "created": self.created,
            "ready": self.ready,
            "namespaces": self.namespaces,
            "processes": [p.to_json() for p in self.processes],
            "dirs": self.dirs,
            "empty_dirs": self.empty_dirs,
            "notes": self.notes,
            "fortigate_emulator": self.fortigate_emulator,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, stack: str) -> LabState | None:
        """The recorded state of a stack's lab, or None when none is recorded."""
        path = run_dir(stack) / "state.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        data["processes"] = [ProcRecord.from_json(p) for p in data.get("processes", [])]
        return cls(**data)


@contextmanager
def locked(stack: str) -> Iterator[None]:
    """One lab command per stack at a time (``up`` twice would start every daemon twice)."""
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    with (RUN_ROOT / f"{stack}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another lab command for stack {stack!r} is running (lock {handle.name})"
            ) from None
        try:
            yield
        finally:
            if not (run_dir(stack) / "state.json").exists():
                # Nothing recorded any more (down, or a failed up): leave no trace in /run.
                # (The state file and the namespaces still guard against a double start.)
                with contextlib.suppress(OSError):
                    os.unlink(handle.name)
                with contextlib.suppress(OSError):
                    RUN_ROOT.rmdir()
            fcntl.flock(handle, fcntl.LOCK_UN)
