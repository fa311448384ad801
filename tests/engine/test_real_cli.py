"""The real Pulumi CLI (built by scripts/build-engine.sh) runs our program.

The provider plugins cannot be built here (the module proxy refuses their modules; see the
README), so a preview stops where the engine loads the libvirt plugin. Up to that point this is
the real thing: the CLI validates Pulumi.yaml's declarations against each stack file, our
language host runs __main__.py, bad config surfaces as one line, and the program registers its
providers and computes its outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab.stackconfig import read_stack
from tests.conftest import TEST_SSH_KEY

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("HA_WEB_LAB_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ha-web-lab"
)
BIN = CACHE / "engine" / "bin"
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


def test_preview_runs_the_program_up_to_the_missing_provider_plugin(
    workspace: tuple[Path, dict[str, str]],
) -> None:
    stack(workspace, "staging")
    for args in (
        ("config", "set", "--path", "sshPublicKeys[0]", TEST_SSH_KEY),
        ("config", "set", "--secret", "sshPrivateKey", "not-a-real-key"),
    ):
        assert pulumi(workspace, *args, "--stack", "staging").returncode == 0
    done = pulumi(workspace, "preview", "--stack", "staging")
    # The program ran in the real engine: its outputs are computed and shown...
    assert '"172.20.1.100"' in done.stdout or "172.20.1.100" in done.stdout
    assert 'publicUrl: "https://198.51.100.10/"' in done.stdout
    # ...and the engine then needs the libvirt plugin, which cannot be built here.
    assert "no resource plugin 'pulumi-resource-libvirt' found" in done.stdout
