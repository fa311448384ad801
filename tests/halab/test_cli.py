"""The command line: render writes every host's files, secrets only as placeholders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from halab.cli import build_parser, main
from halab.render.hosts import TLS_PLACEHOLDER


def test_render_writes_one_folder_per_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--stack", "staging", "--out", str(tmp_path)]) == 0
    hosts = sorted(p.name for p in tmp_path.iterdir())
    assert hosts == ["edge", "lb-1", "lb-2", "lb-3", "web-1", "web-2", "web-3"]
    for host in hosts:
        for name in ("user-data", "network-config", "meta-data"):
            assert (tmp_path / host / name).is_file()
    user = yaml.safe_load((tmp_path / "lb-1" / "user-data").read_text())
    on_disk = (tmp_path / "lb-1" / "files/etc/haproxy/haproxy.cfg").read_text()
    assert on_disk == next(
        f["content"] for f in user["write_files"] if f["path"] == "/etc/haproxy/haproxy.cfg"
    )
    assert "70 files written" in capsys.readouterr().out  # 59 + lb-3: 3 of cloud-init, 8 own


def test_render_writes_no_secret(tmp_path: Path) -> None:
    assert main(["render", "--stack", "dev", "--out", str(tmp_path)]) == 0
    pem = tmp_path / "lb-1" / "files/etc/haproxy/certs/ha-web-lab.pem"
    assert pem.read_text() == TLS_PLACEHOLDER
    assert oct(pem.stat().st_mode & 0o777) == "0o600"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text()


def test_bad_stack_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--stack", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Pulumi.nope.yaml" in err


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--help"])
    assert info.value.code == 0
    assert "render" in capsys.readouterr().out


def test_pulumi_and_e2e_pass_every_argument_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from halab import up
    from halab.e2e import launch

    seen: list[tuple[str, list[str]]] = []

    def record(name: str, args: Sequence[str]) -> int:
        seen.append((name, list(args)))
        return 0

    monkeypatch.setattr(up, "exec_pulumi", record)
    releases: list[str | None] = []
    edges: list[str] = []

    def record_e2e(args: Sequence[str], *, image_release: str | None, edge: str) -> int:
        releases.append(image_release)
        edges.append(edge)
        return record("e2e", args)

    monkeypatch.setattr(launch, "launch", record_e2e)
    assert main(["pulumi", "local", "preview", "--diff", "--", "-x"]) == 0
    assert main(["e2e", "--skip", "drift,interrupt", "--advert-sweep", "250"]) == 0
    # The image's release is the launcher's own option; the rest still goes on to the run.
    assert main(["e2e", "--image-release", "trixie", "--skip", "drift"]) == 0
    # So is the edge (which stack the run drives).
    assert main(["e2e", "--edge", "fortigate", "--skip", "drill"]) == 0
    assert seen == [
        ("local", ["preview", "--diff", "--", "-x"]),
        ("e2e", ["--skip", "drift,interrupt", "--advert-sweep", "250"]),
        ("e2e", ["--skip", "drift"]),
        ("e2e", ["--skip", "drill"]),
    ]
    assert releases == [None, "trixie", None]
    assert edges == ["linux", "linux", "fortigate"]
    with pytest.raises(SystemExit):
        main(["e2e", "--image-release", "buster"])
    # Any other command still refuses an argument it does not know.
    with pytest.raises(SystemExit):
        main(["render", "--stack", "dev", "--no-such-flag"])
