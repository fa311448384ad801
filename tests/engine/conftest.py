"""What every real-engine test stands on: a copy of the project with the CLI halab/machine/engine.py
builds and the registry's plugins from the local mirror, a libvirtd of the test module's own,
and stand-ins for the files a stack names on this machine.

The fixtures are per module, so each module previews against its own fresh state backend and
its own libvirtd; the helpers run the CLI in that copy, never in the checkout.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from halab.machine import engine, libvirtd

REPO = Path(__file__).resolve().parents[2]
BIN = engine.bin_dir()

#: The project copy and the environment the CLI runs with there.
Workspace = tuple[Path, dict[str, str]]

# Module fixtures are torn down before the next module's start, but a namespace of its own per
# libvirtd keeps a slow teardown from ever meeting the next start.
_LIBVIRTDS = itertools.count()


def cli_env(root: Path) -> dict[str, str]:
    """The environment the built CLI runs with in a project copy at ``root``: a state backend,
    a passphrase and a plugin cache of the copy's own (the mirror's plugins installed there),
    no update check, no plugin download, no SSH agent."""
    (root / "state").mkdir(exist_ok=True)
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
    assert engine.install_plugins(env) >= 4, "the plugin mirror (../shared/plugins) is missing"
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A copy of the project (so `pulumi config set` never edits the checkout) and its env."""
    if not (BIN / "pulumi").exists():
        pytest.fail(f"no Pulumi CLI in {BIN}: build it with make engine")
    root = tmp_path_factory.mktemp("project")
    engine.copy_project(root, project_dir=REPO)
    env = cli_env(root)
    yield root, env


def pulumi(ws: Workspace, *args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """The CLI in the project copy, never waiting for a person."""
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


def stack(ws: Workspace, name: str) -> None:
    """Select the stack ``name``, created empty the first time."""
    done = pulumi(ws, "stack", "select", "--create", name)
    assert done.returncode == 0, done.stderr


def configure(ws: Workspace, name: str, *settings: tuple[str, ...]) -> None:
    """Select (or create) ``name`` and run ``pulumi config ARGS...`` for each of ``settings``."""
    stack(ws, name)
    for args in settings:
        done = pulumi(ws, "config", *args, "--stack", name)
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def libvirt_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A libvirtd of this module's own (halab.machine.libvirtd with its own state and netns)."""
    name = f"hwl-preview-{os.getpid()}-{next(_LIBVIRTDS)}"
    own = libvirtd.folders(tmp_path_factory.mktemp("libvirtd"), name)
    try:
        yield libvirtd.start(own)
    finally:
        libvirtd.stop(own)


@pytest.fixture(scope="module")
def machine_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Stand-ins for the files a stack names on this machine (an image, a kernel, an initrd):
    previews read none of their contents."""
    folder = tmp_path_factory.mktemp("machine")
    image = folder / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    for name in ("vmlinuz", "initrd.img"):
        (folder / name).write_bytes(b"\0")
    return {
        "image": str(image),
        "kernel": str(folder / "vmlinuz"),
        "initrd": str(folder / "initrd.img"),
    }
