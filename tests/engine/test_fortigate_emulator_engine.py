"""The FortiGate edge through the real CLI and the registry's fortios plugin, against the emulator.

A minimal Pulumi program builds only components/edge.py from the dev stack's FortiGate settings
(the whole dev stack would need libvirt), with a provider that verifies the emulator's
certificate against the test's CA. The steps a user's edge goes through, each timed:
``up``; a second ``preview`` that must plan nothing; a change of the edge ports (a new VIP and
custom service while the old VIP is still in the group and the policy); allowed sources (an
address object, whose subnet FortiOS reads back as "address mask"), then ``preview`` again;
``destroy``, which must leave none of the lab's objects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab.fortigate.server import Running, serve
from halab.fortigate.store import Store
from halab.fortigate.tls import make_ca_and_server_cert
from tests.engine.conftest import BIN, REPO, cli_env, pulumi

TOKEN = "emulator-test-token-0123456789"

pytestmark = pytest.mark.engine

PROGRAM = '''"""The FortiGate edge alone, from the dev stack's settings (tests/engine)."""
import json
import sys

sys.path.insert(0, {repo!r})

import pulumi
import pulumiverse_fortios as fortios

from components.edge import FortiGateEdge, FortiGateEdgeArgs
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack

config = pulumi.Config()
values = {{
    **read_stack("dev").values,
    "fortigateHost": config.require("host"),
    "edgePorts": json.loads(config.require("ports")),
    "edgeAllowedSources": json.loads(config.require("sources")),
    "fortigateInsecure": False,
    "fortigateCaBundleFile": config.require("caFile"),
    "sshPublicKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0ZXN0 test@lab"],
}}
spec = load_spec(values, stack="dev", secrets_present=frozenset({{"fortigateToken"}}))
provider = fortios.Provider(
    "fortigate",
    hostname=spec.edge.fortigate.host,
    token=config.require_secret("token"),
    insecure=False,
    cabundlefile=spec.edge.fortigate.ca_bundle_file,
    vdom=spec.edge.fortigate.vdom,
)
FortiGateEdge(
    "lab-edge", FortiGateEdgeArgs(spec=spec), opts=pulumi.ResourceOptions(provider=provider)
)
'''


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The emulator on loopback, in memory, with a CA of the test's own."""
    folder = tmp_path_factory.mktemp("fortigate")
    ca, cert, key = make_ca_and_server_cert(folder)
    with serve(Store(), TOKEN, cert=cert, key=key, ca=ca) as running:
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The one-component program and an env like tests/engine/test_real_cli.py's."""
    return edge_project(tmp_path_factory.mktemp("edge-project"))


def edge_project(root: Path) -> tuple[Path, dict[str, str]]:
    """The one-component program in ``root`` and the env the CLI runs it with (also the
    namespace lab's FortiGate test's)."""
    if not (BIN / "pulumi").exists():
        pytest.fail(f"no Pulumi CLI in {BIN}: build it with make engine")
    (root / "Pulumi.yaml").write_text(
        "name: fortigate-edge\nruntime:\n  name: python\n  options:\n"
        "    toolchain: pip\n    virtualenv: venv\n"
    )
    (root / "__main__.py").write_text(PROGRAM.format(repo=str(REPO)))
    # The project's venv (a worktree without one borrows the venv running this test).
    venv = REPO / "venv" if (REPO / "venv").exists() else Path(sys.prefix)
    (root / "venv").symlink_to(venv)
    return root, cli_env(root)


def _pulumi(
    project: tuple[Path, dict[str, str]], *args: str, timeout: int = 300
) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = pulumi(project, *args, timeout=timeout)
    return done, time.monotonic() - start


def _config(project: tuple[Path, dict[str, str]], key: str, value: str, *flags: str) -> None:
    done, _ = _pulumi(project, "config", "set", *flags, key, value)
    assert done.returncode == 0, done.stderr


def _step(project: tuple[Path, dict[str, str]], name: str, *args: str) -> str:
    done, seconds = _pulumi(project, *args)
    output = done.stdout + done.stderr
    print(f"\n== {name}: exit {done.returncode} in {seconds:.1f}s\n{output[-2500:]}")
    assert done.returncode == 0, f"{name} failed:\n{output[-4000:]}"
    return output


def _names(running: Running, path: str) -> set[str]:
    return {str(e.get("name", e.get("policyid"))) for e in running.store.list("root", path)}


def test_edge_up_preview_change_and_destroy_on_the_real_plugin(
    project: tuple[Path, dict[str, str]], emulator: Running
) -> None:
    done, _ = _pulumi(project, "stack", "select", "--create", "dev")
    assert done.returncode == 0, done.stderr
    _config(project, "host", emulator.host)
    _config(project, "caFile", str(emulator.ca_file))
    _config(project, "token", TOKEN, "--secret")
    _config(project, "ports", "[80, 443]")
    _config(project, "sources", '["0.0.0.0/0"]')

    _step(project, "up", "up", "--yes", "--skip-preview")
    vips = {e["name"]: e for e in emulator.store.list("root", "firewall/vip")}
    assert set(vips) == {"hwl-dev-80", "hwl-dev-443"}
    assert vips["hwl-dev-80"]["mappedip"] == [{"range": "10.0.1.100"}]
    group = emulator.store.get("root", "firewall/vipgrp", "hwl-dev-vips")
    assert {m["name"] for m in group["member"]} == set(vips)
    policy = emulator.store.get("root", "firewall/policy", "1000")
    assert policy["dstaddr"] == [{"name": "hwl-dev-vips"}]
    assert {s["name"] for s in policy["service"]} == {"HTTP", "HTTPS"}

    # Reads answer FortiOS's normal forms and defaults: nothing may differ from the program.
    _step(project, "preview (no changes)", "preview", "--expect-no-changes", "--diff")

    # Port 80 -> 8080: a new VIP and a custom service come in while the old VIP is still in the
    # group and the policy; FortiOS refuses to delete it until neither names it.
    _config(project, "ports", "[8080, 443]")
    _step(project, "up (ports 8080, 443)", "up", "--yes", "--skip-preview")
    assert _names(emulator, "firewall/vip") == {"hwl-dev-8080", "hwl-dev-443"}
    assert "hwl-dev-tcp-8080" in _names(emulator, "firewall.service/custom")

    _config(project, "sources", '["198.51.100.0/24"]')
    _step(project, "up (allowed sources)", "up", "--yes", "--skip-preview")
    address = emulator.store.get("root", "firewall/address", "hwl-dev-src-198.51.100.0_24")
    assert address["subnet"] == "198.51.100.0 255.255.255.0"
    _step(project, "preview (no changes)", "preview", "--expect-no-changes", "--diff")

    _step(project, "destroy", "destroy", "--yes", "--skip-preview")
    assert _names(emulator, "firewall/vip") == set()
    assert _names(emulator, "firewall/vipgrp") == set()
    assert _names(emulator, "firewall/policy") == set()
    assert _names(emulator, "firewall/address") == {"all"}
    assert _names(emulator, "firewall.service/custom") == {"HTTP", "HTTPS", "ALL"}
    statuses = json.dumps(sorted({s for _m, _p, s in emulator.requests}))
    print(f"\nHTTP statuses the emulator answered: {statuses}")
