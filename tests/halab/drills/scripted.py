"""A drill target that replays a script instead of running a lab: who holds the VIP, and what
the client sees at each moment. The drills run against it unchanged, so their logic and bounds
are tested in the ordinary test run, without root, namespaces or VMs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from halab.model.drill_settings import DrillSettings, TargetKind, drill_settings
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from halab.target.probe import OK, TIMEOUT, ProbeConfig, Sample

#: What the client sees of a request started at ``t`` (wall clock): outcome, web node, latency.
Answer = tuple[str, str | None, float]


#: What the scripted lab is configured with where the dev stack's values would make a test slow:
#: 100 ms adverts (takeover 0.4 s) and health checks every 100 ms (a node dropped in 0.3 s).
SCRIPTED_CONFIG: dict[str, Any] = {
    "vrrpAdvertIntervalMs": 100,
    "healthCheckIntervalMs": 100,
    "healthCheckFall": 2,
}


def scripted_settings(**config: Any) -> DrillSettings:
    """The drill settings of the dev stack with :data:`SCRIPTED_CONFIG` and ``config`` (config
    keys, as a stack file writes them), built as every target builds them."""
    values = {**read_stack("dev").values, **SCRIPTED_CONFIG, **config}
    spec = load_spec(values, stack="scripted", secrets_present=frozenset({"fortigateToken"}))
    return drill_settings(spec, TargetKind.NAMESPACES)


@dataclass
class ScriptedRun:
    """A probe whose samples are the script's answers at each of its slots."""

    cfg: ProbeConfig
    answer: Callable[[float], Answer]
    started: float = field(default_factory=time.time)

    def wait(self, timeout: float) -> None:
        """Until the probe's requests are all sent (``max_requests``), ``timeout`` at most."""
        if self.cfg.max_requests is not None:
            time.sleep(min(timeout, self.cfg.max_requests * self.cfg.interval))

    def stop(self) -> list[Sample]:
        """Every slot from the start to now, answered by the script."""
        samples = []
        slots = int((time.time() - self.started) / self.cfg.interval) + 1
        if self.cfg.max_requests is not None:
            slots = min(slots, self.cfg.max_requests)
        for seq in range(slots):
            t = self.started + seq * self.cfg.interval
            outcome, backend, latency = self.answer(t)
            status = 200 if outcome == OK else None
            samples.append(Sample(seq, t, latency, outcome, status, backend))
        return samples


class ScriptedTarget:
    """Two LBs, two web nodes; faults take effect on the script's own clock."""

    def __init__(self, settings: DrillSettings, *, normal_latency: float, vip_moves_after: float):
        self.lb_names = ["lb-1", "lb-2"]
        self.web_names = ["web-1", "web-2"]
        self.public_url = "https://192.0.2.10/"
        self.settings = settings
        self.normal_latency = normal_latency
        self.vip_moves_after = vip_moves_after
        self.holders = ["lb-1"]
        self.crashed: dict[str, float] = {}
        self.probes: list[ProbeConfig] = []

    def answer(self, t: float) -> Answer:
        """What a request at ``t`` gets: nothing while the VIP is moving; the connect timeout
        and then another node until HAProxy has marked a dead web node down; else a live node's
        answer at the lab's normal pace."""
        lb_down = self.crashed.get("lb-1")
        if lb_down is not None and lb_down <= t < lb_down + self.vip_moves_after:
            return TIMEOUT, None, 2.0
        live = [w for w in self.web_names if w not in self.crashed]
        web_down = self.crashed.get("web-2")
        node_down = self.settings.haproxy_node_down_s
        connect = self.settings.haproxy_timeout_connect_s
        turn = live[int(t * 10) % len(live)]
        if web_down is not None and web_down <= t < web_down + node_down:
            return OK, turn, connect + self.normal_latency
        return OK, turn, self.normal_latency

    def start_probe(self, cfg: ProbeConfig, duration: float) -> ScriptedRun:
        self.probes.append(cfg)
        return ScriptedRun(cfg, self.answer)

    @contextlib.contextmanager
    def vip_reader(self) -> Iterator[Callable[[], list[str]]]:
        yield lambda: list(self.holders)

    def crash_host(self, host: str) -> float:
        t = time.time()
        self.crashed[host] = t
        if host in self.holders:
            # The backup takes over after its master-down timer.
            self._move_vip_after(self.vip_moves_after)
        return t

    def stall_host(self, host: str, seconds: float) -> tuple[float, float]:
        """A stall as long as the backup's detection or longer moves the VIP at once; a
        shorter one goes unnoticed."""
        t = time.time()
        if host in self.holders and seconds >= self.settings.vrrp_detection_s:
            self._move_vip_after(0.0)
        return t, seconds

    def _move_vip_after(self, seconds: float) -> None:
        timer = threading.Timer(seconds, lambda: self.holders.__setitem__(0, "lb-2"))
        timer.daemon = True
        timer.start()

    def restore_host(self, host: str) -> float:
        self.crashed.pop(host, None)
        return time.time()

    def wait_backends(self, timeout: float = 30.0, up: Sequence[str] | None = None) -> float:
        return time.time()
