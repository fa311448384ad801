"""The real Pulumi CLI and the registry's real plugins preview every stack of ours.

The CLI is the one halab/machine/engine.py builds; the plugins are the registry's (libvirt 0.5.4,
command 1.2.1, fortios 0.0.6 and the upstream Python language host), installed from the local
plugin mirror into a plugin cache of this test's own by halab/machine/engine.py, with plugin
downloads off, so the CLI checks their versions as it does for a user. Each stack previews from a
fresh stack against a libvirtd of the test's own: no error, no warning, and the plan creates
exactly the resources the mock tests see. The FortiOS provider logs in to its FortiGate while it
starts, preview included, so the FortiGate stack previews against a stand-in API on loopback
(tests/engine/fake_fortigate.py; never the stack's own address), both ways a user can run it:
verification off (the dev stack as committed) and on, with a CA bundle.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from tests.conftest import TEST_SSH_KEY, Graph
from tests.engine.conftest import BIN, REPO, Workspace, configure, pulumi, stack
from tests.engine.fake_fortigate import FakeFortiGate, fake_fortigate
from tests.halab.render.validators import example_stacks

pytestmark = pytest.mark.engine


def test_the_registry_plugins_are_in_the_plugin_cache_and_nothing_shadows_them(
    workspace: Workspace,
) -> None:
    done = pulumi(workspace, "plugin", "ls", "--json")
    assert done.returncode == 0, done.stderr
    cached = {(p["kind"], p["name"], p["version"]) for p in json.loads(done.stdout)}
    assert {
        ("resource", "libvirt", "0.5.4"),
        ("resource", "command", "1.2.1"),
        ("resource", "fortios", "0.0.6"),
    } <= cached
    # Only the CLI is on PATH from us: no plugin there that the engine would take instead.
    assert [p.name for p in BIN.iterdir()] == ["pulumi"]
    for folder in workspace[1]["PATH"].split(os.pathsep):
        assert not list(Path(folder).glob("pulumi-resource-*")), folder


def test_cli_version_is_the_one_we_build(workspace: Workspace) -> None:
    done = pulumi(workspace, "version")
    assert done.stdout.strip() == "v3.274.0"


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_cli_accepts_our_config_declarations_and_agrees_with_our_reader(
    workspace: Workspace, name: str
) -> None:
    stack(workspace, name)
    done = pulumi(workspace, "config", "--json", "--stack", name)
    assert done.returncode == 0, done.stderr
    cli = {k.removeprefix("ha-web-lab:"): v["value"] for k, v in json.loads(done.stdout).items()}
    ours = read_stack(name).values
    assert set(cli) == set(ours)
    for key, value in ours.items():
        text = cli[key]
        parsed = text if isinstance(value, str) else json.loads(text)
        assert parsed == value, key


def test_bad_config_is_one_line_through_the_real_engine(
    workspace: Workspace,
) -> None:
    stack(workspace, "staging")
    assert (
        pulumi(workspace, "config", "set", "vip", "10.9.9.9", "--stack", "staging").returncode == 0
    )
    try:
        done = pulumi(workspace, "preview", "--stack", "staging")
    finally:
        pulumi(workspace, "config", "rm", "vip", "--stack", "staging")
    assert done.returncode != 0
    assert "error: ha-web-lab:vip = '10.9.9.9': is outside 172.20.1.0/24" in done.stdout
    assert "Traceback" not in done.stdout


@pytest.fixture(scope="module")
def fortigate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeFortiGate]:
    """The FortiGate every FortiGate preview talks to: on loopback, never the stack's own host."""
    with fake_fortigate(tmp_path_factory.mktemp("fortigate")) as api:
        yield api


#: (stack file, variant): every stack of ours, and the FortiGate stack once more with
#: certificate verification on.
PREVIEWS = [
    *((name, "insecure" if name == "dev" else "") for name in example_stacks(REPO)),
    ("dev", "ca-bundle"),
]


def _overrides(
    name: str, variant: str, files: dict[str, str], fortigate: FakeFortiGate
) -> dict[str, Any]:
    """What a user of that stack sets on their machine (and the mock run gets the same)."""
    values: dict[str, Any] = {"baseImage": files["image"]}
    if name == "e2e":
        values |= {"kernel": files["kernel"], "initrd": files["initrd"]}
    if name == "dev":
        # Never the stack file's FortiGate address: the provider may log in at preview.
        values["fortigateHost"] = fortigate.host
    if variant == "ca-bundle":
        values |= {"fortigateInsecure": False, "fortigateCaBundleFile": str(fortigate.ca_file)}
    return values


@pytest.mark.parametrize(
    ("name", "variant"), PREVIEWS, ids=[f"{n}-{v}".strip("-") for n, v in PREVIEWS]
)
def test_every_stack_previews_fresh_on_the_real_plugins_and_plans_the_mock_graph(
    workspace: Workspace,
    libvirt_uri: str,
    machine_files: dict[str, str],
    fortigate: FakeFortiGate,
    program: Callable[..., Graph],
    name: str,
    variant: str,
) -> None:
    # A stack of its own per case, so each preview is a new user's first one.
    stack_name = f"{name}-{variant}" if variant else name
    root = workspace[0]
    (root / f"Pulumi.{stack_name}.yaml").write_text((root / f"Pulumi.{name}.yaml").read_text())
    overrides = _overrides(name, variant, machine_files, fortigate)
    fortigate.requests.clear()
    settings: list[tuple[str, ...]] = [
        ("set", "--path", "sshPublicKeys[0]", TEST_SSH_KEY),
        ("set", "--secret", "sshPrivateKey", "not-a-real-key"),
        ("set", "libvirtUri", libvirt_uri),
        *(("set", key, str(value).lower() if isinstance(value, bool) else str(value))
          for key, value in overrides.items()),
    ]  # fmt: skip
    if name == "dev":
        settings.append(("set", "--secret", "fortigateToken", "not-a-real-token"))
    configure(workspace, stack_name, *settings)
    done = pulumi(workspace, "preview", "--stack", stack_name, "--json", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = json.loads(done.stdout)
    diagnostics = [
        d for d in plan.get("diagnostics", []) if d.get("severity") in ("error", "warning")
    ]
    # Not one warning: the provider's deprecation of the pool's top-level path is gone too.
    assert diagnostics == []
    planned = Counter(step["newState"]["type"] for step in plan["steps"] if step["op"] == "create")
    planned.pop("pulumi:pulumi:Stack", None)
    # The same program under mocks registers exactly the same resources.
    mocked = Counter(r.type for r in program(name, **overrides).resources)
    assert planned == mocked
    spec = load_spec(
        {**read_stack(name).values, **overrides, "sshPublicKeys": [TEST_SSH_KEY]},
        stack=stack_name,
        secrets_present=frozenset({"fortigateToken", "sshPrivateKey"}),
    )
    assert planned["libvirt:index/domain:Domain"] == len(spec.plan.hosts)
    if name == "dev":
        provider = next(
            step["newState"]["inputs"]
            for step in plan["steps"]
            if step["newState"]["type"] == "pulumi:providers:fortios"
        )
        if variant == "ca-bundle":
            assert provider["insecure"] == "false"
            assert provider["cabundlefile"] == str(fortigate.ca_file)
            # It verified the chain against the CA it was given: a failed verification would
            # have ended the preview before any request (below).
        else:
            assert provider["insecure"] == "true"
        # Either way the provider logs in while it starts, at preview too: a FortiGate stack
        # needs its FortiGate's API reachable even to preview.
        paths = [path.split("?")[0] for _, path, _ in fortigate.requests]
        assert "/api/v2/monitor/system/status" in paths, fortigate.requests
        assert planned["fortios:firewall/policy:Policy"] == 1
        assert planned["fortios:firewall/vip:Vip"] == 2
