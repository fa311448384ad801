"""Drills on the web tier: round robin, a crashed app, every node down, a node lost."""

from __future__ import annotations

import time
from dataclasses import replace

from halab.drills import analysis
from halab.drills.core import (
    DrillResult,
    DrillRun,
    Recorder,
    check_healthy_before,
    finish,
    new_result,
)

#: Requests of the round-robin drill, one after another.
ROUND_ROBIN_REQUESTS = 20
#: ``web-hard-failure`` watches the client for this many of HAProxy's times to drop a node: the
#: first shows the requests HAProxy still sends to the dead node, the rest that they stopped.
WATCH_NODE_DOWNS = 2
#: What a busy machine may add to an answer beyond the lab's measured latency (a 2-core host
#: running the whole lab schedules HAProxy and the client late now and then).
ANSWER_MARGIN_S = 0.5
#: A request HAProxy sent to a dead node waits out the whole connect timeout; one slower than
#: this share of it (on top of the lab's normal latency) is counted as one of those.
SLOW_CONNECT_SHARE = 0.5


def round_robin(run: DrillRun) -> DrillResult:
    """Drill 1: with nothing broken, answers alternate between the web nodes.

    The requests go one after another (a sequential probe): what a balancer hands out in turn
    is only seen in turn when requests do not overlap.
    """
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("round-robin", "Round robin across the web nodes", target, stack)
    probe = replace(probe, sequential=True, max_requests=ROUND_ROBIN_REQUESTS)
    rec = Recorder(target, probe)
    bound = ROUND_ROBIN_REQUESTS * (probe.total_timeout + probe.interval) + 1.0
    with rec.observing(bound) as (_watcher, samples):
        assert rec.run is not None
        rec.run.wait(bound + 5.0)
    m = analysis.metrics(samples)
    changed, pairs = analysis.alternation(samples)
    result.figures = {**m.to_json(), "alternating_pairs": changed, "pairs": pairs}
    ratio = changed / pairs if pairs else 0.0
    result.figures["alternation"] = round(ratio, 3)
    result.checks = {
        "no failed request": m.failed == 0,
        f"every web node answered ({len(target.web_names)})": set(m.backends)
        == set(target.web_names),
        f"alternation >= {bounds.min_alternation}": ratio >= bounds.min_alternation,
    }
    if len(target.web_names) > 1:
        counts = dict(m.backends)
        result.checks["balanced answers (counts differ by at most 2)"] = analysis.balanced(
            counts, target.web_names
        )
    return finish(result, rec, samples)


def app_crash(run: DrillRun) -> DrillResult:
    """Drill 4: one web node's app (uvicorn) dies; HAProxy routes around it."""
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("app-crash", "A web node's app crashes", target, stack)
    rec = Recorder(target, probe)
    web = target.web_names[0]
    node_down = target.settings.haproxy_node_down_s
    with rec.observing(30.0) as (_watcher, samples):
        time.sleep(run.lead_s)
        t0 = target.kill_daemon(web, "uvicorn")
        rec.mark("inject", f"{web}: SIGKILL uvicorn (nginx stays up)", web, t0)
        # Until the health checks mark the node DOWN, and a margin after.
        time.sleep(node_down + 1.0)
        t1 = target.start_daemon(web, "uvicorn")
        rec.mark("restore", f"{web}: uvicorn started again", web, t1)
        target.wait_backends(30.0)
        rec.mark("note", "every web node UP again")
        time.sleep(0.3)
    m = analysis.metrics(analysis.window(samples, t0))
    result.figures = {**m.to_json(), "web": web}
    result.checks = {
        f"failed requests <= {bounds.max_app_crash_failures}": m.failed
        <= bounds.max_app_crash_failures,
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)


def all_webs_down(run: DrillRun) -> DrillResult:
    """Drill 6: every web node is down; the client gets a clear 503 quickly, not a hang.

    While the nodes refuse connections, a request waits at most HAProxy's retries, each after a
    turn-around of min(timeout connect, 1 s); once the health checks mark them down, every
    request gets a 503 at once. The probe waits well beyond the first of those per request, so
    a slow answer shows as its real latency instead of a timeout.
    """
    target, stack, probe = run.target, run.stack, run.probe
    settings = target.settings
    result = new_result("all-webs-down", "Every web node down", target, stack)
    # The slowest answer HAProxy may give: its retries, and the lab's latency with nothing wrong.
    slowest = round(settings.haproxy_refused_request_s + run.normal_latency_s + ANSWER_MARGIN_S, 3)
    # The first 503: the next request after the fault, answered when its retries are spent, or
    # as soon as the checks have marked every node down, whichever comes first.
    first_503 = round(
        min(settings.haproxy_refused_request_s, settings.haproxy_node_down_s)
        + probe.interval
        + run.normal_latency_s
        + ANSWER_MARGIN_S,
        3,
    )
    patient = replace(probe, total_timeout=max(probe.total_timeout, 2 * slowest))
    # Down until the checks have surely dropped every node, then long enough to see fast 503s.
    end = run.tail_s(1.0)
    down_s = settings.haproxy_node_down_s + end
    rec = Recorder(target, patient)
    with rec.observing(run.lead_s + down_s + 30.0) as (_watcher, samples):
        time.sleep(run.lead_s)
        t0 = time.time()
        for web in target.web_names:
            target.crash_host(web)
        rec.mark("inject", "every web node: nginx + uvicorn killed", None, t0)
        time.sleep(down_s)
        t1 = time.time()
        for web in target.web_names:
            target.restore_host(web)
        rec.mark("restore", "web daemons started again", None, t1)
        target.wait_backends(30.0)
        rec.mark("note", "every web node UP again")
        time.sleep(0.3)
    during = analysis.window(samples, t0, t1)
    first = analysis.first_status_after(samples, 503, t0)
    m = analysis.metrics(during)
    time_to_503 = round(first.t + first.latency - t0, 4) if first else None
    slow = [s for s in during if s.latency > probe.total_timeout]
    last = analysis.window(samples, t1 - end, t1)
    result.figures = {
        **m.to_json(),
        "time_to_503_s": time_to_503,
        "refused_request_bound_s": settings.haproxy_refused_request_s,
        f"slower_than_{int(1000 * probe.total_timeout)}ms": len(slow),
        "answered_by": sorted({s.lb for s in during if s.lb}),
    }
    result.checks = {
        f"a 503 within {first_503}s": time_to_503 is not None and time_to_503 <= first_503,
        f"no answer slower than {slowest}s (no hang)": m.max_latency_s <= slowest,
        "a fast 503 for every request once HAProxy marked the nodes DOWN": bool(last)
        and all(s.status == 503 and s.latency < probe.total_timeout for s in last),
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)


def web_hard_failure(run: DrillRun) -> DrillResult:
    """A whole web node dies at once (every process frozen then killed; a VM powered off):
    HAProxy retries its requests on the others, then marks it down; then it comes back.

    A dead process refuses connections and HAProxy retries at once; a dead VM answers nothing,
    so each request HAProxy still sends it waits for the connect timeout before it is sent
    elsewhere. The client is watched for twice the checks' detection time: the slow requests
    and when they end are the figures, and by the end every request must be fast again. The
    node's return is outside the probe, since a VM boots for minutes under emulation.
    """
    target, stack, bounds, probe = run.target, run.stack, run.bounds, run.probe
    result = new_result("web-hard-failure", "A whole web node dies", target, stack)
    web = target.web_names[-1]
    others = [w for w in target.web_names if w != web]
    settings = target.settings
    detection = settings.haproxy_node_down_s
    # A request sent to the dead node waits for the connect timeout before HAProxy sends it
    # elsewhere.
    slow = round(SLOW_CONNECT_SHARE * settings.haproxy_timeout_connect_s + run.normal_latency_s, 3)
    # The end of the watch that must be fast again: a second, or two of the probe's requests;
    # it starts a second after HAProxy has surely marked the node down, however slow the probe.
    end = run.tail_s(1.0)
    watch = max(WATCH_NODE_DOWNS * detection + 2.0, detection + 1.0 + end)
    rec = Recorder(target, probe)
    with rec.observing(run.lead_s + watch + 10.0) as (_watcher, samples):
        time.sleep(run.lead_s)
        t0 = target.crash_host(web)
        rec.mark("inject", f"{web}: the whole node down", web, t0)
        time.sleep(watch)
    t1 = target.restore_host(web)
    rec.mark("restore", f"{web}: started again", web, t1)
    target.wait_backends(300.0)
    back_in_pool_s = time.time() - t1
    after = analysis.window(samples, t0)
    m = analysis.metrics(after)
    slow_ones = [s for s in after if s.latency >= slow]
    last_second = analysis.window(samples, t0 + watch - end)
    result.figures = {
        **m.to_json(),
        "web": web,
        "detection_s": detection,
        f"slower_than_{int(slow * 1000)}ms": len(slow_ones),
        "last_slow_after_s": round(max(s.t for s in slow_ones) - t0, 2) if slow_ones else None,
        "answered_at_the_end_by": sorted({s.backend for s in last_second if s.backend}),
        "back_in_pool_s": round(back_in_pool_s, 1),
    }
    result.checks = {
        "at least one other web node": bool(others),
        f"failed requests <= {bounds.max_app_crash_failures}": m.failed
        <= bounds.max_app_crash_failures,
        f"fast again by {watch:.0f}s (every request of the last {end:.1f}s under {slow}s)": bool(
            last_second
        )
        and all(s.ok and s.latency < slow for s in last_second),
        f"only {others} answered then": {s.backend for s in last_second if s.backend}
        <= set(others),
    }
    check_healthy_before(result, samples, t0)
    return finish(result, rec, samples)
