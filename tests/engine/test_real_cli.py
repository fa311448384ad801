"""The real Pulumi CLI (built by scripts/build-engine.sh) previews our program.

The registry's provider plugins cannot be built here (the module proxy refuses their modules;
see engine/README.md): the libvirt and command plugins on PATH are our stand-ins, there is no
FortiOS plugin. So staging (Linux edge) previews cleanly against the project's own libvirtd, and
dev (FortiGate) stops where the engine needs the FortiOS plugin. Everything else is the real
thing: the CLI validates Pulumi.yaml's declarations against each stack file, our language host
runs __main__.py, bad config surfaces as one line, the plan matches the mock tests' graph.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from halab import cache_root
from halab.stackconfig import read_stack
from tests.conftest import TEST_SSH_KEY, Graph

REPO = Path(__file__).resolve().parents[2]
BIN = cache_root() / "engine" / "bin"
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "halab", "components", "cloud-init")

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the project (so `pulumi config set` never edits the checkout) and its env."""
    if not (BIN / "pulumi").exists() or not (BIN / "pulumi-language-python").exists():
        pytest.fail(f"no Pulumi CLI in {BIN}: build it with scripts/build-engine.sh (make engine)")
    root = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, root / name)
    for stack_file in REPO.glob("Pulumi.*.yaml"):
        shutil.copy(stack_file, root / stack_file.name)
    (root / "venv").symlink_to(REPO / "venv")
    (root / "state").mkdir()
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "PULUMI_BACKEND_URL": f"file://{root / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "test-only",
        "PULUMI_HOME": str(root / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    env.pop("SSH_AUTH_SOCK", None)
    yield root, env


def pulumi(
    ws: tuple[Path, dict[str, str]], *args: str, timeout: int = 180
) -> subprocess.CompletedProcess[str]:
    root, env = ws
    return subprocess.run(
        [str(BIN / "pulumi"), *args, "--non-interactive"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stack(ws: tuple[Path, dict[str, str]], name: str) -> None:
    done = pulumi(ws, "stack", "select", "--create", name)
    assert done.returncode == 0, done.stderr


def test_cli_version_is_the_one_we_build(workspace: tuple[Path, dict[str, str]]) -> None:
    done = pulumi(workspace, "version")
    assert done.stdout.strip() == "v3.274.0"


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_cli_accepts_our_config_declarations_and_agrees_with_our_reader(
    workspace: tuple[Path, dict[str, str]], name: str
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
    workspace: tuple[Path, dict[str, str]],
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
def libvirt_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A libvirtd of this test's own (scripts/libvirtd-local.sh with its own state and netns)."""
    state = tmp_path_factory.mktemp("libvirtd")
    env = {
        **os.environ,
        "HA_WEB_LAB_STATE": str(state),
        "HA_WEB_LAB_LIBVIRT_NETNS": f"hwl-preview-{os.getpid()}",
    }
    script = str(REPO / "scripts" / "libvirtd-local.sh")
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)


def _set(ws: tuple[Path, dict[str, str]], name: str, *settings: tuple[str, ...]) -> None:
    stack(ws, name)
    for args in settings:
        done = pulumi(ws, "config", *args, "--stack", name)
        assert done.returncode == 0, done.stderr


def test_staging_previews_cleanly_and_plans_the_mock_graph(
    workspace: tuple[Path, dict[str, str]], libvirt_uri: str, program: Callable[..., Graph]
) -> None:
    image = workspace[0] / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    _set(
        workspace,
        "staging",
        ("set", "--path", "sshPublicKeys[0]", TEST_SSH_KEY),
        ("set", "--secret", "sshPrivateKey", "not-a-real-key"),
        ("set", "libvirtUri", libvirt_uri),
        ("set", "baseImage", str(image)),
    )
    done = pulumi(workspace, "preview", "--stack", "staging", "--json", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = json.loads(done.stdout)
    diagnostics = [
        d for d in plan.get("diagnostics", []) if d.get("severity") in ("error", "warning")
    ]
    # The engine's own notes about plugins found on PATH are expected; nothing from our program.
    assert [d for d in diagnostics if "from $PATH" not in d.get("message", "")] == []
    planned = Counter(step["newState"]["type"] for step in plan["steps"] if step["op"] == "create")
    planned.pop("pulumi:pulumi:Stack", None)
    # The same program under mocks (tests/test_main.py) registers the same resources.
    mocked = Counter(r.type for r in program("staging").resources)
    assert planned == mocked
    assert planned["libvirt:index/domain:Domain"] == 6
    assert planned["command:remote:Command"] == 7


def test_dev_preview_needs_the_fortios_plugin_we_cannot_build(
    workspace: tuple[Path, dict[str, str]], libvirt_uri: str
) -> None:
    _set(
        workspace,
        "dev",
        ("set", "--path", "sshPublicKeys[0]", TEST_SSH_KEY),
        ("set", "--secret", "sshPrivateKey", "not-a-real-key"),
        ("set", "--secret", "fortigateToken", "not-a-real-token"),
        ("set", "libvirtUri", libvirt_uri),
    )
    done = pulumi(workspace, "preview", "--stack", "dev", timeout=300)
    assert done.returncode != 0
    assert "no resource plugin 'pulumi-resource-fortios' found" in done.stdout
