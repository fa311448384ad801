"""The FortiGate-VM's config drive and readiness wait, rendered from the spec.

What is proven here is the drive's content and shape (built for real with mkisofs where it is
installed); that FortiOS boots from it is not (docs/fortigate-vm.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from halab.model.errors import ConfigError
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec, load_spec
from halab.model.stackconfig import read_stack
from halab.render.hosts import (
    CONFIG_DRIVE_LICENSE,
    CONFIG_DRIVE_META_DATA,
    CONFIG_DRIVE_USER_DATA,
    config_drive_env,
    config_drive_script,
    fortigate_config_drive,
    fortigate_ready_script,
)
from tests.halab.model.test_fortigate_vm import TOKEN, vm_spec

REPO = Path(__file__).resolve().parents[3]
STACKS = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in REPO.glob("Pulumi.*.yaml"))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "fortios.qcow2"
    path.write_bytes(b"QFI\xfb")
    return path


def stack_as_fortigate_vm(stack: str, image: Path) -> LabSpec | None:
    """A stack of the project with ``edge: fortigate-vm``, or None when its zones cannot host
    one (no hypervisor address in Public, no DMZ gateway: the spec says why)."""
    values = dict(read_stack(stack).values)
    values.pop("fortigateHost", None)
    values.update(edge="fortigate-vm", fortigateImage=str(image), fortigateInsecure=True)
    try:
        return load_spec(values, stack=stack, secrets_present=frozenset({"fortigateToken"}))
    except ConfigError:
        return None


@pytest.mark.parametrize("stack", STACKS)
def test_the_bootstrap_config_is_the_plan_of_every_stack_that_can_have_one(
    stack: str, image: Path
) -> None:
    spec = stack_as_fortigate_vm(stack, image)
    assert STACKS, "no stacks found"
    if spec is None:
        pytest.skip(f"{stack}'s zones cannot host a FortiGate-VM")
    fortigate = spec.plan.fortigate
    assert fortigate is not None
    config = fortigate_config_drive(spec, token=TOKEN).file(CONFIG_DRIVE_USER_DATA).content
    wan, dmz = fortigate.leg(ZoneName.PUBLIC), fortigate.leg(ZoneName.DMZ)
    lines = [line.strip() for line in config.splitlines()]
    # Each port by its FortiOS name, with the plan's address and prefix.
    wan_at = lines.index(f'edit "{spec.edge.fortigate.wan_interface}"')
    dmz_at = lines.index(f'edit "{spec.edge.fortigate.dmz_interface}"')
    assert lines[wan_at + 2] == f"set ip {wan.interface}"
    assert IPv4Interface(lines[wan_at + 2].split()[-1]) == IPv4Interface(
        f"{spec.fortigate_wan_address}/{spec.zones[ZoneName.PUBLIC].cidr.prefixlen}"
    )
    assert lines[wan_at + 3] == "set allowaccess ping https"
    assert lines[dmz_at + 2] == f"set ip {dmz.interface}"
    assert dmz.address == spec.zones[ZoneName.DMZ].gateway_ip
    # The default route into the Public zone, out of the WAN port.
    route_at = lines.index("config router static")
    assert lines[route_at + 2] == f"set gateway {spec.zones[ZoneName.PUBLIC].gateway_ip}"
    assert lines[route_at + 3] == f'set device "{spec.edge.fortigate.wan_interface}"'
    # The API admin: the stack's token, only from this machine's Public address.
    assert f"set api-key {TOKEN}" in lines
    assert f"set ipv4-trusthost {spec.zones[ZoneName.PUBLIC].host_ip} 255.255.255.255" in lines
    assert f'set vdom "{spec.edge.fortigate.vdom}"' in lines
    # Every block that opens closes (FortiOS would take the rest as part of it).
    opened = sum(line.startswith(("config ", "edit ")) for line in lines)
    assert opened == sum(line in ("end", "next") for line in lines)


def test_meta_data_names_the_licence_only_when_there_is_one(image: Path) -> None:
    spec = vm_spec(image)
    without = fortigate_config_drive(spec, token=TOKEN)
    assert json.loads(without.file(CONFIG_DRIVE_META_DATA).content) == {}
    assert [f.path for f in without.files] == [CONFIG_DRIVE_USER_DATA, CONFIG_DRIVE_META_DATA]

    licence = "-----BEGIN FGT VM LICENSE-----\nQAAA\n-----END FGT VM LICENSE-----\n"
    drive = fortigate_config_drive(spec, token=TOKEN, license_text=licence)
    meta = json.loads(drive.file(CONFIG_DRIVE_META_DATA).content)
    assert meta == {"files": [{"path": "license", "content_path": "/content/0000"}]}
    # content_path is relative to openstack/: the licence is where meta_data.json says.
    assert "openstack" + meta["files"][0]["content_path"] == CONFIG_DRIVE_LICENSE
    assert drive.file(CONFIG_DRIVE_LICENSE).content == licence
    # The token and the licence make the drive secret; meta_data.json is not.
    assert [f.secret for f in drive.files] == [True, False, True]
    assert drive.digest != without.digest


def test_a_new_token_is_a_new_drive(image: Path) -> None:
    spec = vm_spec(image)
    first = fortigate_config_drive(spec, token=TOKEN)
    assert fortigate_config_drive(spec, token=TOKEN).digest == first.digest
    assert fortigate_config_drive(spec, token="b" * 30).digest != first.digest


@pytest.mark.skipif(
    not (shutil.which("genisoimage") or shutil.which("mkisofs")) or not shutil.which("isoinfo"),
    reason="needs genisoimage (mkisofs, isoinfo)",
)
def test_the_drive_is_an_iso_labelled_config_2_with_exactly_those_files(
    image: Path, tmp_path: Path
) -> None:
    drive = fortigate_config_drive(vm_spec(image), token=TOKEN, license_text="LIC\n")
    out = tmp_path / "a dir" / "drive.iso"
    script = config_drive_script(drive, str(out))
    assert TOKEN not in script  # it comes in the environment
    env = {**os.environ, **config_drive_env(drive)}
    run = subprocess.run(
        ["bash", "-c", script], env=env, check=False, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{out}\n"
    assert out.stat().st_mode & 0o077 == 0  # the token is in it
    info = subprocess.run(
        ["isoinfo", "-d", "-i", str(out)], check=False, capture_output=True, text=True
    )
    assert "Volume id: config-2" in info.stdout.splitlines()
    listing = subprocess.run(
        ["isoinfo", "-R", "-f", "-i", str(out)], check=False, capture_output=True, text=True
    )
    files = {line.lstrip("/") for line in listing.stdout.split()}
    assert files - {"openstack", "openstack/latest", "openstack/content"} == {
        CONFIG_DRIVE_USER_DATA,
        CONFIG_DRIVE_META_DATA,
        CONFIG_DRIVE_LICENSE,
    }
    for path in (CONFIG_DRIVE_USER_DATA, CONFIG_DRIVE_META_DATA, CONFIG_DRIVE_LICENSE):
        read = subprocess.run(
            ["isoinfo", "-R", "-x", f"/{path}", "-i", str(out)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert read.stdout == drive.file(path).content, path


def test_the_readiness_wait_is_bounded_and_keeps_the_token_out_of_the_script(
    image: Path, tmp_path: Path
) -> None:
    spec = vm_spec(image, readinessTimeoutS=30)
    script = fortigate_ready_script(spec)
    assert "https://203.0.113.2/api/v2/monitor/system/status" in script
    assert "attempts=3" in script and "--max-time 5" in script and "sleep 5" in script
    assert "--insecure" in script  # the dev stack's fortigateInsecure
    assert TOKEN not in script and "${HWL_FORTIGATE_TOKEN}" in script
    if shutil.which("shellcheck"):
        path = tmp_path / "ready.sh"
        path.write_text(script)
        check = subprocess.run(
            ["shellcheck", str(path)], check=False, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout


def test_the_readiness_wait_verifies_with_the_ca_it_is_given(image: Path, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    by_file = fortigate_ready_script(
        vm_spec(image, fortigateInsecure=False, fortigateCaBundleFile=str(ca))
    )
    assert f"tls=(--cacert {ca})" in by_file and "--insecure" not in by_file
    by_text = fortigate_ready_script(
        vm_spec(image, fortigateInsecure=False, fortigateCaBundle=ca.read_text())
    )
    assert '"${HWL_FORTIGATE_CA}"' in by_text and "MIIB" not in by_text
