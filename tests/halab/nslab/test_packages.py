"""A missing daemon binary is an error naming the Debian package, never a skip."""

from __future__ import annotations

import pytest

from halab.nslab import lab as lab_module
from halab.nslab.recipes import parse_unit


def test_missing_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = (*lab_module.REQUIRED, "/nonexistent/sbin/keepalived")
    monkeypatch.setattr(lab_module, "REQUIRED", fake)
    with pytest.raises(
        lab_module.LabError,
        match=r"^missing /nonexistent/sbin/keepalived: apt-get install .*keepalived$",
    ):
        lab_module.require_packages()


def test_parse_unit_keeps_repeated_keys() -> None:
    unit = (
        "[Unit]\nDescription=x\n[Service]\nUser=hwl-app\nEnvironment=A=1\n"
        "Environment=B=2\nExecStart=/usr/bin/python3 -m uvicorn main:app\n"
    )
    parsed = parse_unit(unit)
    assert parsed["Environment"] == ["A=1", "B=2"]
    assert parsed["User"] == ["hwl-app"]
    assert "Description" not in parsed
