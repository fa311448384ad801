"""Where a drill's time went on the VMs: each VM's CPU and HAProxy's own view of its backends,
read before and after the drill and reported as the difference.

A drill on emulated guests can measure an overload instead of a failover (every hop slow, the
requests piling up). These figures tell the two apart: a VM busy most of the drill, a queue in
HAProxy, a response time that grew. Pure functions over what the VMs printed; the reading is
:meth:`halab.vmlab.lab.VmLab.usage_snapshot`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Any

#: ``/proc/stat``'s first line: the columns of idle time (idle, iowait), after the ``cpu`` word.
_IDLE_COLUMNS = (3, 4)
#: Counters of ``show stat`` reported as what the drill added.
COUNTERS = {
    "lbtot": "requests",
    "econ": "connect_errors",
    "eresp": "response_errors",
    "wretr": "retries",
    "wredis": "redispatches",
    "chkfail": "failed_checks",
}
#: Gauges of ``show stat`` reported as they were at the end.
GAUGES = {
    "status": "status",
    "check_status": "check",
    "qmax": "queue_max_since_start",
    "smax": "sessions_max_since_start",
    "qtime": "queue_ms_avg",
    "ctime": "connect_ms_avg",
    "rtime": "response_ms_avg",
    "ttime": "total_ms_avg",
}


def cpu_jiffies(proc_stat_line: str) -> tuple[int, int]:
    """(busy, all) jiffies of the machine from ``/proc/stat``'s ``cpu`` line."""
    words = proc_stat_line.split()
    if not words or words[0] != "cpu":
        raise ValueError(f"not /proc/stat's cpu line: {proc_stat_line!r}")
    values = [int(w) for w in words[1:9]]
    idle = sum(values[i] for i in _IDLE_COLUMNS if i < len(values))
    return sum(values) - idle, sum(values)


def haproxy_stat(text: str) -> dict[str, dict[str, str]]:
    """``show stat``'s CSV as ``{server or BACKEND: {column: value}}`` of the web backend."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        return {}
    rows = csv.DictReader([lines[0][2:], *lines[1:]])
    return {
        row["svname"]: {k: v for k, v in row.items() if k and v is not None}
        for row in rows
        if row.get("pxname") == "web_nodes"
    }


@dataclass(frozen=True)
class UsageSnapshot:
    """What every VM that answered said at one moment."""

    t: float
    cpu: dict[str, tuple[int, int]] = field(default_factory=dict)
    haproxy: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def _number(value: str | None) -> int:
    return int(value) if value and value.lstrip("-").isdigit() else 0


def between(before: UsageSnapshot, after: UsageSnapshot) -> dict[str, Any]:
    """What the drill between two snapshots cost: each VM's busy share, HAProxy's counters added
    and its gauges at the end. A VM missing from either snapshot (crashed) is left out."""
    cpu = {}
    for host in sorted(set(before.cpu) & set(after.cpu)):
        busy = after.cpu[host][0] - before.cpu[host][0]
        total = after.cpu[host][1] - before.cpu[host][1]
        if total > 0:
            cpu[host] = round(busy / total, 3)
    haproxy: dict[str, dict[str, dict[str, Any]]] = {}
    for lb in sorted(set(before.haproxy) & set(after.haproxy)):
        rows = {}
        for name, end in after.haproxy[lb].items():
            start = before.haproxy[lb].get(name, {})
            row: dict[str, Any] = {
                label: _number(end.get(col)) - _number(start.get(col))
                for col, label in COUNTERS.items()
            }
            row.update({label: end[col] for col, label in GAUGES.items() if end.get(col)})
            rows[name] = row
        haproxy[lb] = rows
    return {"seconds": round(after.t - before.t, 1), "cpu_busy": cpu, "haproxy": haproxy}


def summary_line(usage: dict[str, Any]) -> str:
    """One line: each VM's busy share, and per LB what its backend saw."""
    cpu = ", ".join(f"{h} {100 * v:.0f}%" for h, v in usage.get("cpu_busy", {}).items())
    parts = [f"CPU busy over {usage.get('seconds', 0)} s: {cpu or 'not read'}"]
    for lb, rows in usage.get("haproxy", {}).items():
        backend = rows.get("BACKEND", {})
        servers = ", ".join(
            f"{name} {row.get('status', '?')}" for name, row in rows.items() if name != "BACKEND"
        )
        parts.append(
            f"{lb}: {backend.get('requests', 0)} requests, "
            f"{backend.get('retries', 0)} retries, {backend.get('redispatches', 0)} redispatched, "
            f"queue max {backend.get('queue_max_since_start', 0)}, "
            f"response {backend.get('response_ms_avg', '?')} ms avg ({servers})"
        )
    return "; ".join(parts)
