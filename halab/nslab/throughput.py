"""How many requests/s the lab serves: through the public IP, and straight to one web node.

``wrk`` (Debian package ``wrk``) when installed, else the Python loop :mod:`halab.nslab.loadgen`;
both run as helpers of the lab, in a host's namespace, and are stopped by PID.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from halab.model.roles import ZoneName
from halab.nslab.lab import LabError, NamespaceLab
from halab.plumbing import procs


def measure_load(
    lab: NamespaceLab,
    host: str,
    url: str,
    *,
    connections: int = 16,
    duration: float = 5.0,
    tool: str = "auto",
) -> dict[str, Any]:
    """Requests/s against ``url`` from a host's namespace.

    ``wrk`` (Debian package ``wrk``) when installed and ``tool`` is ``auto`` or ``wrk``;
    else the Python loop :mod:`halab.nslab.loadgen`, which saturates a core itself.
    """
    use_wrk = tool == "wrk" or (tool == "auto" and Path("/usr/bin/wrk").exists())
    out = lab.root / "helpers" / f"load-{time.time_ns()}.log"
    if use_wrk:
        cmd = ["/usr/bin/wrk", "-t2", f"-c{connections}", f"-d{duration:.0f}s", url]
    else:
        cmd = [
            sys.executable, "-m", "halab.nslab.loadgen", "--url", url,
            "--connections", str(connections), "--duration", str(duration),
        ]  # fmt: skip
    record = lab.spawn_helper("load", cmd, host, out)
    left = procs.wait_gone([(record.pid, record.starttime)], duration + 30.0)
    if left:
        procs.kill_tree([(record.pid, record.starttime)])
        raise LabError(f"the load run in {host} did not finish in time")
    text = out.read_text(encoding="utf-8", errors="replace")
    out.unlink(missing_ok=True)
    if use_wrk:
        return parse_wrk(text, url, connections)
    try:
        result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise LabError(f"the load run in {host} failed: {text[-400:]}") from None
    result["tool"] = "python"
    return result


def throughput(
    lab: NamespaceLab, connections: int = 16, duration: float = 5.0, tool: str = "auto"
) -> dict[str, Any]:
    """Requests/s through the public IP (from the client) vs straight to one web node (from
    the backup LB: the web firewall lets HTTP in only from the LBs), in the same lab."""
    holders = lab.vip_holders()
    backup = next(lb.name for lb in lab.lbs if lb.name not in holders)
    web = lab.webs[0]
    direct_url = f"http://{web.leg(ZoneName.INTERNAL).address}/"
    vip = measure_load(
        lab,
        "client",
        lab.spec.plan.public_url,
        connections=connections,
        duration=duration,
        tool=tool,
    )
    direct = measure_load(
        lab, backup, direct_url, connections=connections, duration=duration, tool=tool
    )
    ratio = vip["rps"] / direct["rps"] if direct["rps"] else 0.0
    return {"vip": vip, "direct": direct, "ratio": round(ratio, 3), "direct_from": backup}


def parse_wrk(text: str, url: str, connections: int) -> dict[str, Any]:
    """The figures of a wrk run (its text output)."""
    rps = errors = 0.0
    total = 0
    for line in text.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(words[1])
        elif "requests in" in line:
            total = int(words[0])
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            errors += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
    if not rps:
        raise LabError(f"wrk printed no rate: {text[-400:]}")
    return {
        "url": url,
        "connections": connections,
        "requests": total,
        "errors": int(errors),
        "rps": rps,
        "tool": "wrk",
    }
