"""Reports from a synthetic drill: JSON with every sample, a PNG, a summary."""

from __future__ import annotations

import json
from pathlib import Path

from halab.drills import report
from halab.drills.analysis import Event
from halab.drills.core import DrillResult
from halab.target.probe import Sample
from tests.halab.drills.scripted import scripted_settings


def test_report_files(tmp_path: Path) -> None:
    samples = [
        Sample(i, 10 + i * 0.02, 0.005, "ok" if i % 7 else "refused", 200 if i % 7 else None,
               f"web-{1 + i % 2}" if i % 7 else None)
        for i in range(60)
    ]  # fmt: skip
    result = DrillResult(
        "lb-hard-failure", "Hard failure", "dev", scripted_settings(vrrpAdvertIntervalMs=50), 10.0,
        samples, [Event(10.5, "inject", "crash", "lb-1"), Event(10.7, "vip", "+VIP", "lb-2")],
        {"failed": 9, "outage_s": 0.16, "requests": 60}, {"outage < 2s": True},
    )  # fmt: skip
    paths = report.write(result, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert len(data["samples"]) == 60 and data["passed"] is True
    assert data["settings"]["vrrp_advert_interval_ms"] == 50
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["txt"].read_text()
    assert "PASSED" in text and "outage 160 ms" in text
