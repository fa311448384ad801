"""The renderer: per-host files as data, and the readiness scripts `pulumi up` runs."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from halab.model.roles import PATHS, Role
from halab.model.spec import LabSpec
from halab.model.stackconfig import read_stack
from halab.plumbing import hostdeps
from halab.render.hosts import (
    RenderedFile,
    readiness_script,
    render_all,
    vip_check_script,
    write_files,
    write_tree,
)

STACKS = sorted(
    p.name[len("Pulumi.") : -len(".yaml")]
    for p in Path(__file__).resolve().parents[3].glob("Pulumi.*.yaml")
)


@pytest.fixture(scope="module", params=STACKS)
def spec(request: pytest.FixtureRequest) -> LabSpec:
    return read_stack(request.param).spec(offline=True)


def _shellcheck(script: str, tmp_path: Path, name: str) -> None:
    hostdeps.require_tools(["shellcheck"], pytest.fail)
    path = tmp_path / name
    path.write_text(script)
    done = subprocess.run(
        ["shellcheck", "-S", "style", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_gate_scripts_pass_shellcheck(spec: LabSpec, tmp_path: Path) -> None:
    for name, rendered in render_all(spec).items():
        _shellcheck(readiness_script(spec, rendered), tmp_path, f"ready-{name}.sh")
    lb = spec.plan.hosts_with_role(Role.LB)[0]
    _shellcheck(vip_check_script(spec, lb, spec.plan.public_url), tmp_path, "vip-check.sh")


def _run_tier_gate(script: str, tmp_path: Path, *, answer: str) -> tuple[int, list[float]]:
    """Run the tier gate with a ``curl`` that always answers ``answer`` and a ``sleep`` that
    only notes its argument: the exit code, and every pause the gate asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pauses = tmp_path / "pauses"
    (bin_dir / "curl").write_text(f"#!/bin/sh\necho '{answer}'\n")
    (bin_dir / "sleep").write_text(f'#!/bin/sh\necho "$1" >> {pauses}\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    done = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    noted = pauses.read_text().split() if pauses.exists() else []
    return done.returncode, [float(p) for p in noted]


def test_tier_gate_never_keeps_one_pace(spec: LabSpec, tmp_path: Path) -> None:
    """HAProxy deals the web nodes in turn to all its clients, so a gate asking at the same pace
    as another client (the e2e probe runs during changes) would be dealt one node every time and
    fail on a healthy lab: its pauses between requests must vary."""
    lb = spec.plan.hosts_with_role(Role.LB)[0]
    webs = spec.plan.hosts_with_role(Role.WEB)
    script = vip_check_script(spec, lb, spec.plan.public_url)
    code, pauses = _run_tier_gate(
        script, tmp_path, answer=f'{{"message": "Hello from {webs[0].name}"}}'
    )
    if len(webs) == 1:
        assert code == 0
        return
    assert code == 1
    assert len(pauses) >= 20
    assert all(0.25 <= p < 0.75 for p in pauses)
    assert len(set(pauses)) > len(pauses) // 4


def test_tier_gate_passes_once_every_web_node_has_answered(spec: LabSpec, tmp_path: Path) -> None:
    lb = spec.plan.hosts_with_role(Role.LB)[0]
    names = " ".join(f'"Hello from {h.name}"' for h in spec.plan.hosts_with_role(Role.WEB))
    code, pauses = _run_tier_gate(
        vip_check_script(spec, lb, spec.plan.public_url), tmp_path, answer=names
    )
    assert (code, pauses) == (0, [])


def test_every_web_node_is_an_haproxy_backend(spec: LabSpec) -> None:
    rendered = render_all(spec)
    webs = spec.plan.hosts_with_role(Role.WEB)
    for lb in spec.plan.hosts_with_role(Role.LB):
        cfg = rendered[lb.name].file(PATHS.haproxy_cfg).content
        servers = [
            line.split()[1:3] for line in cfg.splitlines() if line.strip().startswith("server ")
        ]
        assert servers == [[w.name, f"{w.legs[0].address}:80"] for w in webs]


def test_both_lbs_re_announce_the_vip_after_a_partition(spec: LabSpec) -> None:
    """The loser of a healed split answers the winner's advert before it steps down, so the
    winner re-sends gratuitous ARPs (the partition drill in tests/halab/nslab proves the effect)."""
    rendered = render_all(spec)
    for lb in spec.plan.hosts_with_role(Role.LB):
        lines = rendered[lb.name].file(PATHS.keepalived_conf).content.splitlines()
        assert "    vrrp_higher_prio_send_advert" in lines


@pytest.mark.parametrize(("redirect", "expected"), [(None, True), (True, True), (False, False)])
def test_port_80_redirects_to_https_unless_the_stack_says_otherwise(
    redirect: bool | None, expected: bool
) -> None:
    config = read_stack("dev")
    values = dict(config.values)
    if redirect is not None:
        values["httpsRedirect"] = redirect
    spec = dataclasses.replace(config, values=values).spec(offline=True)
    lb = spec.plan.hosts_with_role(Role.LB)[0]
    cfg = render_all(spec)[lb.name].file(PATHS.haproxy_cfg).content
    assert ("http-request redirect scheme https code 301" in cfg) is expected


def test_user_data_is_one_yaml_document_with_the_files(spec: LabSpec) -> None:
    for name, host in render_all(spec).items():
        doc = yaml.safe_load(host.user_data)
        assert doc["hostname"] == name
        assert [f["path"] for f in doc["write_files"]] == [f.path for f in host.files]
        assert all(f["defer"] is True for f in doc["write_files"])


def test_instance_id_follows_content(spec: LabSpec) -> None:
    first = render_all(spec)
    again = render_all(spec)
    assert {n: h.instance_id for n, h in first.items()} == {
        n: h.instance_id for n, h in again.items()
    }
    assert len({h.instance_id for h in first.values()}) == len(first)


def test_files_go_under_a_root_at_their_real_paths_with_their_modes(tmp_path: Path) -> None:
    files = (RenderedFile("/etc/a/b.conf", "b\n"), RenderedFile("/etc/key.pem", "k", "0600"))
    written = write_files(files, tmp_path / "root")
    assert written == [tmp_path / "root/etc/a/b.conf", tmp_path / "root/etc/key.pem"]
    assert [p.read_text() for p in written] == ["b\n", "k"]
    assert [p.stat().st_mode & 0o777 for p in written] == [0o644, 0o600]


def test_a_tree_holds_each_hosts_seed_and_its_files_under_files(tmp_path: Path) -> None:
    rendered = render_all(read_stack("dev").spec(offline=True))
    written = write_tree(rendered, tmp_path)
    assert len(written) == sum(3 + len(host.files) for host in rendered.values())
    for name, host in rendered.items():
        assert (tmp_path / name / "user-data").read_text() == host.user_data
        assert (tmp_path / name / "network-config").read_text() == host.network_config
        assert (tmp_path / name / "meta-data").read_text() == host.meta_data
        for f in host.files:
            path = tmp_path / name / "files" / f.path.lstrip("/")
            assert path.read_text() == f.content
            assert path.stat().st_mode & 0o777 == int(f.mode, 8)
