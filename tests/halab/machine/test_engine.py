"""The engine's pieces without building anything: names, stamps, environments, plugin installs
through a stand-in ``pulumi`` that records what it is asked, and the toolchain's unpacking."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from halab.machine import engine

REPO = Path(__file__).resolve().parents[3]
MIRROR_NAMES = (
    "pulumi-language-python-v3.259.0-linux-amd64.tar.gz",
    "pulumi-resource-command-v1.2.1-linux-amd64.tar.gz",
    "pulumi-resource-libvirt-v0.5.4-linux-amd64.tar.gz",
)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HA_WEB_LAB_CACHE", str(cache))
    monkeypatch.setenv("HA_WEB_LAB_STATE", str(tmp_path / "state"))
    # A home of the test's own: the real ~/.pulumi may hold a login.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return cache


def test_tarball_names_parse_as_the_registry_names_them() -> None:
    parsed = [engine.PluginTarball.parse(Path(n), "linux-amd64") for n in MIRROR_NAMES]
    assert [(t.kind, t.name, t.version) for t in parsed if t] == [
        ("language", "python", "3.259.0"),
        ("resource", "command", "1.2.1"),
        ("resource", "libvirt", "0.5.4"),
    ]
    assert engine.PluginTarball.parse(Path(MIRROR_NAMES[1]), "linux-arm64") is None
    assert engine.PluginTarball.parse(Path("README.md"), "linux-amd64") is None
    hyphenated = engine.PluginTarball.parse(
        Path("pulumi-resource-azure-native-v2.1.0-linux-amd64.tar.gz"), "linux-amd64"
    )
    assert hyphenated is not None and hyphenated.name == "azure-native"


def test_go_versions_compare_as_numbers() -> None:
    assert engine.version_tuple("go1.26.8") == (1, 26, 8)
    assert engine.version_tuple("1.9") < engine.version_tuple("1.26.6")
    assert engine.version_tuple("go1.27rc1") == (1, 27)
    assert engine.go_needed(REPO / "engine" / "pulumi") == "1.26.6"
    with pytest.raises(engine.EngineError, match="not a Go version"):
        engine.version_tuple("devel")


def test_the_stamp_is_the_one_the_bash_build_wrote() -> None:
    # sha256 of "go=... tags=... var=... pkg=...\n" + go.mod + go.sum, as computed by
    # `sha256sum` in the bash build script this module replaced: cached builds stay valid.
    assert (
        engine.build_stamp("go1.26.8", b"module x\n", b"sum\n")
        == "a12a5e73c5b79027a89335b5bdfa503bd8c0c6a94c61188f43a77282ac6eb602"
    )


def test_a_cli_built_from_these_inputs_needs_no_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = engine.inputs_digest(b"module x\n", b"sum\n")
    assert digest != engine.inputs_digest(b"module x\n", b"other sum\n")
    out = tmp_path / "engine" / "pulumi-v3.1.0"
    out.mkdir(parents=True)
    binary = out / engine.CLI_BINARY
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (out / engine.INPUTS_FILE).write_text(digest + "\n")
    # The stamp is written last: without it the build did not finish.
    assert engine.cached_cli(tmp_path, digest) is None
    (out / ".stamp").write_text("s\n")
    assert engine.cached_cli(tmp_path, digest) == ("v3.1.0", binary)
    assert engine.cached_cli(tmp_path, "another digest") is None
    # build_cli then never asks for Go (which would download it on a machine without).
    mod_dir = tmp_path / "module"
    mod_dir.mkdir()
    (mod_dir / "go.mod").write_bytes(b"module x\n")
    (mod_dir / "go.sum").write_bytes(b"sum\n")
    monkeypatch.setattr(engine, "MODULE_DIR", mod_dir)

    def no_go(*_args: object) -> None:
        raise AssertionError("Go was asked for")

    monkeypatch.setattr(engine, "go_for_build", no_go)
    build = engine.build_cli(tmp_path)
    assert (build.version, build.binary, build.built) == ("v3.1.0", binary, False)
    assert (tmp_path / "engine" / "bin" / engine.CLI_BINARY).resolve() == binary


def test_toolchain_url_takes_the_first_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    tail = f"/golang.org/toolchain/@v/v0.0.1-go{engine.GO_PIN}.linux-amd64.zip"
    assert engine.go_toolchain_url({}) == engine.GO_PROXY_DEFAULT + tail
    assert engine.go_toolchain_url({"GOPROXY": "https://p.example/,direct"}) == (
        "https://p.example" + tail
    )
    assert engine.go_toolchain_url({"GOPROXY": "off"}) == engine.GO_PROXY_DEFAULT + tail


def test_unzip_keeps_modes_and_makes_go_binaries_executable(tmp_path: Path) -> None:
    archive = tmp_path / "go.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        with_mode = zipfile.ZipInfo("go/src/make.bash")
        with_mode.create_system = 3
        with_mode.external_attr = (stat.S_IFREG | 0o750) << 16
        zf.writestr(with_mode, "#!/bin/sh\n")
        for name in ("go/bin/go", "go/pkg/tool/linux_amd64/compile", "go/VERSION"):
            dos = zipfile.ZipInfo(name)
            dos.create_system = 0  # made elsewhere than on Unix: no mode stored
            zf.writestr(dos, "content")
    engine.unzip_with_modes(archive, tmp_path / "out")
    mode = {p: (tmp_path / "out/go" / p).stat().st_mode & 0o777 for p in
            ("src/make.bash", "bin/go", "pkg/tool/linux_amd64/compile", "VERSION")}  # fmt: skip
    assert mode == {
        "src/make.bash": 0o750,
        "bin/go": 0o755,
        "pkg/tool/linux_amd64/compile": 0o755,
        "VERSION": 0o644,
    }


def test_unzip_refuses_an_entry_outside_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped", "x")
    with pytest.raises(engine.EngineError, match="outside"):
        engine.unzip_with_modes(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_bin_holds_only_the_link_to_the_cli(tmp_path: Path) -> None:
    binary = tmp_path / "pulumi-v1" / "pulumi"
    binary.parent.mkdir()
    binary.write_text("cli")
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "pulumi-resource-libvirt").write_text("a stand-in of old")
    (folder / "pulumi-language-python").symlink_to(binary)
    engine.link_only(folder, binary)
    assert [p.name for p in folder.iterdir()] == ["pulumi"]
    assert (folder / "pulumi").resolve() == binary


def test_engine_env_puts_the_cli_first_once(own_cache: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    base = {"PATH": "/usr/bin", "HA_WEB_LAB_PLUGIN_MIRROR": str(mirror)}
    env = engine.engine_env(base)
    assert env["PATH"] == f"{own_cache / 'engine' / 'bin'}:/usr/bin"
    assert engine.engine_env(env)["PATH"] == env["PATH"]
    assert env["PULUMI_HOME"] == str(own_cache / "pulumi-home")
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    # No mirror: the CLI may download plugins; a PULUMI_HOME of the user's stays.
    no_mirror = engine.engine_env({**base, "HA_WEB_LAB_PLUGIN_MIRROR": "", "PULUMI_HOME": "/h"})
    assert "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" not in no_mirror
    assert no_mirror["PULUMI_HOME"] == "/h"


def test_engine_env_sh_exports_what_engine_env_says(own_cache: Path) -> None:
    env = {**os.environ, "HA_WEB_LAB_PLUGIN_MIRROR": "", "PATH": "/usr/bin:/bin"}
    env.pop("PULUMI_HOME", None)
    done = subprocess.run(
        ["bash", "-c", '. scripts/engine-env.sh && printf "%s\\n" "$PATH" "$PULUMI_HOME"'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.splitlines() == [
        f"{own_cache / 'engine' / 'bin'}:/usr/bin:/bin",
        str(own_cache / "pulumi-home"),
    ]
    assert "make engine" in done.stderr  # no CLI built in this cache yet: it says what to run


def fake_pulumi(folder: Path, cached: list[dict[str, str]]) -> Path:
    """A ``pulumi`` that answers ``plugin ls --json`` and logs every call, one JSON a line."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.jsonl"
    script = folder / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"if sys.argv[1:3] == ['plugin', 'ls']: print({json.dumps(json.dumps(cached))})\n"
    )
    script.chmod(0o755)
    return log


def tarball(path: Path, files: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))


def test_install_plugins_installs_what_the_cache_lacks(tmp_path: Path) -> None:
    cli = tmp_path / "cli"
    log = fake_pulumi(cli, [{"kind": "resource", "name": "command", "version": "1.2.1"}])
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MIRROR_NAMES:
        tarball(mirror / name, {"pulumi-language-python": "host", "LICENSE": "text"})
    (mirror / "README.md").write_text("how to install")
    env = {"PATH": f"{cli}:/usr/bin:/bin", "HA_WEB_LAB_PLUGIN_MIRROR": str(mirror)}

    assert engine.install_plugins(env) == 3
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    libvirt = str(mirror / MIRROR_NAMES[2])
    assert calls == [
        ["plugin", "ls", "--json"],
        ["plugin", "install", "resource", "libvirt", "v0.5.4", "--file", libvirt],
    ]
    # The language host goes next to the CLI, without the licence, with a version marker.
    assert (cli / "pulumi-language-python").read_text() == "host"
    assert not (cli / "LICENSE").exists()
    assert (cli / ".pulumi-language-python.version").read_text().strip() == "3.259.0"


def test_a_cli_that_ships_its_own_language_host_keeps_it(tmp_path: Path) -> None:
    cli = tmp_path / "cli"
    fake_pulumi(cli, [])
    (cli / "pulumi-language-python").write_text("official")
    (cli / "pulumi-language-python").chmod(0o755)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    tarball(mirror / MIRROR_NAMES[0], {"pulumi-language-python": "mirror's"})
    engine.install_plugins({"PATH": str(cli), "HA_WEB_LAB_PLUGIN_MIRROR": str(mirror)})
    assert (cli / "pulumi-language-python").read_text() == "official"


def test_no_mirror_installs_nothing(tmp_path: Path) -> None:
    log = fake_pulumi(tmp_path / "cli", [])
    env = {"PATH": str(tmp_path / "cli"), "HA_WEB_LAB_PLUGIN_MIRROR": str(tmp_path / "none")}
    assert engine.install_plugins(env) == 0
    assert not log.exists()


def test_project_env_makes_a_private_passphrase_once(tmp_path: Path) -> None:
    fake_pulumi(tmp_path / "cli", [])
    base = {"PATH": f"{tmp_path / 'cli'}:/usr/bin:/bin", "HA_WEB_LAB_PLUGIN_MIRROR": ""}
    env = engine.project_env(base)
    state = tmp_path / "state"
    assert env["PULUMI_BACKEND_URL"] == f"file://{state / 'pulumi-state'}"
    passphrase = Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"])
    assert passphrase == state / "passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600
    first = passphrase.read_text()
    assert engine.project_env(base)["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(passphrase)
    assert passphrase.read_text() == first
    # A passphrase of the user's wins; no file is read or made for it.
    own = engine.project_env({**base, "PULUMI_CONFIG_PASSPHRASE": "mine"})
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in own


def test_project_env_without_any_cli_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(engine.EngineError, match="make engine"):
        engine.project_env({"PATH": str(tmp_path), "HA_WEB_LAB_PLUGIN_MIRROR": ""})


# ---- whose backend: the user's choice first, the project's local one only without one -------


def login(folder: Path, current: str) -> Path:
    """A credentials.json as `pulumi login URL` leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    accounts = {current: {"accessToken": "pul-0123", "username": "me"}}
    (folder / "credentials.json").write_text(json.dumps({"current": current, "accounts": accounts}))
    return folder


@pytest.fixture
def with_cli(tmp_path: Path) -> dict[str, str]:
    """An environment with a stand-in official CLI on PATH and no plugin mirror."""
    fake_pulumi(tmp_path / "cli", [])
    return {"PATH": f"{tmp_path / 'cli'}:/usr/bin:/bin", "HA_WEB_LAB_PLUGIN_MIRROR": ""}


def test_a_backend_url_of_the_users_wins(with_cli: dict[str, str], tmp_path: Path) -> None:
    login(tmp_path / "home" / ".pulumi", "https://api.pulumi.com")
    env = engine.project_env({**with_cli, "PULUMI_BACKEND_URL": "s3://team-state"})
    assert env["PULUMI_BACKEND_URL"] == "s3://team-state"
    assert not (tmp_path / "state" / "pulumi-state").exists()


def test_a_pulumi_login_of_the_users_wins(with_cli: dict[str, str], tmp_path: Path) -> None:
    own = login(tmp_path / "home" / ".pulumi", "https://api.pulumi.example.com")
    env = engine.project_env(with_cli)
    assert env["PULUMI_BACKEND_URL"] == "https://api.pulumi.example.com"
    assert env["PULUMI_CREDENTIALS_PATH"] == str(own)  # where the login's token is
    # Pulumi's home of the user's own, and a login kept elsewhere by PULUMI_CREDENTIALS_PATH.
    home = login(tmp_path / "pulumi-home", "file:///srv/team-state")
    assert engine.project_env({**with_cli, "PULUMI_HOME": str(home)})["PULUMI_BACKEND_URL"] == (
        "file:///srv/team-state"
    )
    creds = login(tmp_path / "creds", "gs://team-state")
    env = engine.project_env({**with_cli, "PULUMI_CREDENTIALS_PATH": str(creds)})
    assert env["PULUMI_BACKEND_URL"] == "gs://team-state"
    assert env["PULUMI_CREDENTIALS_PATH"] == str(creds)


def test_a_login_made_with_the_built_cli_is_found(
    with_cli: dict[str, str], own_cache: Path
) -> None:
    # `. scripts/engine-env.sh && pulumi login URL` with no ~/.pulumi keeps it in our cache.
    login(own_cache / "pulumi-home", "https://api.pulumi.com")
    assert engine.project_env(with_cli)["PULUMI_BACKEND_URL"] == "https://api.pulumi.com"


@pytest.mark.parametrize("stored", [None, "", "{not json", json.dumps({"current": ""})])
def test_without_a_login_the_state_is_local(
    with_cli: dict[str, str], tmp_path: Path, stored: str | None
) -> None:
    if stored is not None:
        (tmp_path / "home" / ".pulumi").mkdir(parents=True)
        (tmp_path / "home" / ".pulumi" / "credentials.json").write_text(stored)
    env = engine.project_env(with_cli)
    assert env["PULUMI_BACKEND_URL"] == f"file://{tmp_path / 'state' / 'pulumi-state'}"
    assert "PULUMI_CREDENTIALS_PATH" not in env


def test_a_backend_named_in_pulumi_yaml_is_left_to_the_cli(
    with_cli: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not engine.declares_backend(REPO)
    (tmp_path / "Pulumi.yaml").write_text("name: x\nbackend:\n  url: s3://team-state\n")
    assert engine.declares_backend(tmp_path)
    monkeypatch.setattr(engine, "declares_backend", lambda: True)
    assert "PULUMI_BACKEND_URL" not in engine.project_env(with_cli)


def test_the_built_cli_keeps_reading_the_users_logins(own_cache: Path, tmp_path: Path) -> None:
    # Pulumi's home moves to our cache (the plugins); the logins stay where the user has them.
    own = login(tmp_path / "home" / ".pulumi", "https://api.pulumi.com")
    env = engine.engine_env({"PATH": "/usr/bin", "HA_WEB_LAB_PLUGIN_MIRROR": ""})
    assert env["PULUMI_HOME"] == str(own_cache / "pulumi-home")
    assert env["PULUMI_CREDENTIALS_PATH"] == str(own)
    mine = engine.engine_env({"PATH": "/usr/bin", "PULUMI_CREDENTIALS_PATH": "/c"})
    assert mine["PULUMI_CREDENTIALS_PATH"] == "/c"


@pytest.mark.parametrize(
    "own",
    [
        {"PULUMI_CONFIG_PASSPHRASE": "mine"},
        {"PULUMI_CONFIG_PASSPHRASE": ""},  # the CLI takes an empty one when it is set
        {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/pulumi-passphrase"},
    ],
)
def test_a_passphrase_of_the_users_wins(
    with_cli: dict[str, str], tmp_path: Path, own: dict[str, str]
) -> None:
    env = engine.project_env({**with_cli, **own})
    assert env.get("PULUMI_CONFIG_PASSPHRASE_FILE") == own.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    assert not (tmp_path / "state" / "passphrase").exists()


def test_a_copy_of_the_project_runs_the_program_and_takes_only_the_stacks_asked_for(
    tmp_path: Path,
) -> None:
    project = tmp_path / "checkout"
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.dev.yaml", "Pulumi.e2e.yaml", "README.md"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(name)
    for folder in ("halab", "components", "cloud-init"):
        (project / folder / "__pycache__").mkdir(parents=True)
        (project / folder / "__pycache__" / "x.pyc").write_text("")
        (project / folder / "a.py").write_text(folder)
    engine.copy_project(tmp_path / "one", "e2e", project)
    copied = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert copied == sorted([*engine.PROJECT_FILES, "Pulumi.e2e.yaml", "venv"])
    assert (tmp_path / "one" / "halab" / "a.py").read_text() == "halab"
    assert not (tmp_path / "one" / "halab" / "__pycache__").exists()
    assert (tmp_path / "one" / "venv").readlink() == project / "venv"
    engine.copy_project(tmp_path / "all", project_dir=project)
    assert {p.name for p in (tmp_path / "all").glob("Pulumi.*.yaml")} == {
        "Pulumi.dev.yaml",
        "Pulumi.e2e.yaml",
    }
