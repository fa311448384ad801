"""Drill reports: JSON with every sample, a timeline PNG and a short text summary.

The timeline has one point per request: x is its start (seconds from the drill's start), y its
latency; colour says which web node answered or how it failed. Fault injections and repairs are
vertical lines, VIP changes are marked with the LB that gained or lost the address.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.pyplot as plt

from halab.drills.core import DrillResult
from halab.target.probe import OK

_FAIL_COLOURS = {
    "http_error": "tab:orange",
    "connect_timeout": "tab:red",
    "timeout": "darkred",
    "refused": "tab:purple",
    "reset": "tab:pink",
    "tls_error": "tab:brown",
    "error": "black",
}
_OK_COLOURS = ["tab:green", "tab:blue", "tab:olive", "tab:cyan", "tab:gray"]


def summary(result: DrillResult) -> str:
    """A few lines a person reads first."""
    f = result.figures
    lines = [
        f"{result.title} [{result.name}] on stack {result.stack}: "
        + ("PASSED" if result.passed else "FAILED"),
        f"  requests {f.get('requests', 0)}, failed {f.get('failed', 0)}, "
        f"outage {1000 * float(f.get('outage_s', 0.0)):.0f} ms, "
        f"median latency {f.get('median_latency_ms', 0)} ms, "
        f"max {1000 * float(f.get('max_latency_s', 0.0)):.0f} ms",
    ]
    extra = {
        k: v
        for k, v in f.items()
        if k
        not in {
            "requests", "ok", "failed", "outage_s", "median_latency_ms", "max_latency_s",
            "recovered", "statuses", "outcomes", "lab_usage",
        }
    }  # fmt: skip
    if extra:
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in extra.items()))
    if f.get("outcomes"):
        lines.append(f"  outcomes {f['outcomes']}, statuses {f.get('statuses', {})}")
    for name, ok in result.checks.items():
        lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def timeline(result: DrillResult, path: Path) -> Path:
    """Draw the drill's timeline to a PNG."""
    t0 = min([s.t for s in result.samples] + [e.t for e in result.events] + [result.started])
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    backends = sorted({s.backend or "?" for s in result.samples if s.outcome == OK})
    for i, backend in enumerate(backends):
        pts = [s for s in result.samples if s.outcome == OK and (s.backend or "?") == backend]
        ax.scatter(
            [s.t - t0 for s in pts],
            [1000 * s.latency for s in pts],
            s=9,
            color=_OK_COLOURS[i % len(_OK_COLOURS)],
            label=f"200 from {backend}",
        )
    outcomes = sorted({s.outcome for s in result.samples if s.outcome != OK})
    for outcome in outcomes:
        pts = [s for s in result.samples if s.outcome == outcome]
        codes = sorted({str(s.status) for s in pts if s.status})
        label = outcome + (f" ({'/'.join(codes)})" if codes else "")
        ax.scatter(
            [s.t - t0 for s in pts],
            [1000 * s.latency for s in pts],
            s=18,
            marker="x",
            color=_FAIL_COLOURS.get(outcome, "black"),
            label=label,
        )
    top = max([1000 * s.latency for s in result.samples] + [10.0])
    for e in result.events:
        x = e.t - t0
        if e.kind in ("inject", "restore"):
            colour = "red" if e.kind == "inject" else "green"
            ax.axvline(x, color=colour, linestyle="--", linewidth=1.2)
            ax.text(x, top * 1.02, e.kind, color=colour, fontsize=8, rotation=90, va="bottom")
        elif e.kind == "vip":
            colour = "tab:blue" if e.detail == "+VIP" else "tab:gray"
            ax.axvline(x, color=colour, linestyle=":", linewidth=1.0)
            ax.text(
                x,
                top * 0.85,
                f"{e.detail} {e.host}",
                color=colour,
                fontsize=7,
                rotation=90,
                va="top",
            )
    ax.set_xlabel("time since drill start (s)")
    ax.set_ylabel("request latency (ms)")
    verdict = "passed" if result.passed else "FAILED"
    f = result.figures
    ax.set_title(
        f"{result.title} — stack {result.stack} — {verdict}: failed {f.get('failed', 0)}, "
        f"outage {1000 * float(f.get('outage_s', 0.0)):.0f} ms",
        fontsize=10,
    )
    ax.set_ylim(0, top * 1.25)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write(result: DrillResult, out: Path) -> dict[str, Path]:
    """``<out>/<drill>.json``, ``.png`` and ``.txt``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / f"{result.name}.json",
        "png": out / f"{result.name}.png",
        "txt": out / f"{result.name}.txt",
    }
    paths["json"].write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    timeline(result, paths["png"])
    paths["txt"].write_text(summary(result) + "\n", encoding="utf-8")
    return paths


def write_index(results: Sequence[DrillResult], out: Path) -> Path:
    """``<out>/summary.txt``: every drill's summary, in order."""
    path = out / "summary.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(summary(r) for r in results) + "\n", encoding="utf-8")
    return path
