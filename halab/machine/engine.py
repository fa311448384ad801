"""The Pulumi engine on a machine without the official CLI, and the environment every Pulumi run
of this project gets.

- :func:`build_cli`: the CLI built from the Go module proxy. ``engine/pulumi/`` is a small wrapper
  module whose ``go.mod``/``go.sum`` pin the exact version; the binary goes into a cache folder
  keyed by that version, with a stamp of what it was built from, and ``bin/`` in the engine cache
  holds a link to it and nothing else. A rerun, also from a fresh clone elsewhere, checks the
  stamp and builds nothing.
- :func:`go_for_build`: the Go that builds it: the one on PATH when it is as new as ``go.mod``
  asks, else a pinned toolchain from the Go module proxy, checked against its sha256 (a fresh
  Debian has Go 1.19).
- :func:`install_plugins`: the registry's plugins from a local plugin mirror (a folder of the
  registry's release tarballs) into Pulumi's plugin cache, as ``pulumi plugin install`` does for a
  user, so the CLI checks their versions against what the SDKs ask for. Plugins are never put on
  PATH, where they would shadow the cache.
- :func:`engine_env` and :func:`project_env`: the variables a Pulumi run needs here (the built
  CLI first on PATH, the plugin cache and Pulumi's home in the project's cache, the user's own
  credentials; the backend the user chose, else a local file backend, and a passphrase file
  unless the user has one).

Stdlib only: ``make test`` runs it before anything else is installed, and ``make fresh-test``
runs it on a pristine Debian. ``python3 -m halab.machine.engine --help`` lists its commands;
``make engine`` runs it; ``. scripts/engine-env.sh`` takes its ``--shell-env`` lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from halab.plumbing.roots import cache_root, state_root
from halab.plumbing.teller import teller

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "engine" / "pulumi"
#: What a copy of the project needs to run the program (:func:`copy_project`).
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "halab", "components", "cloud-init")

#: What is built: the CLI's main package, the module whose version names the build, the variable
#: that gets that version (``pulumi version`` and the plugin version checks read it), the tags.
CLI_BINARY = "pulumi"
CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
VERSION_MODULE = "github.com/pulumi/pulumi/pkg/v3"
VERSION_VAR = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
BUILD_TAGS = "osusergo,grpcnotrace"

#: The Go toolchain fetched when the machine has none new enough: the zip ``GOTOOLCHAIN`` would
#: fetch from the module proxy (``golang.org/toolchain``), linux-amd64, and its sha256.
GO_PIN = "1.26.8"
GO_PIN_SHA256 = "30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7"
GO_PROXY_DEFAULT = "https://proxy.golang.org"
GO_DOWNLOAD_TRIES = 3

#: Registry release tarballs: pulumi-<kind>-<name>-v<version>-<os>-<arch>.tar.gz.
PLUGIN_TARBALL = re.compile(
    r"^pulumi-(?P<kind>[a-z]+)-(?P<name>[a-z0-9-]+?)-v(?P<version>\d[^-]*)"
    r"-(?P<platform>[a-z]+-[a-z0-9]+)\.tar\.gz$"
)
PLATFORMS = {("Linux", "x86_64"): "linux-amd64", ("Linux", "aarch64"): "linux-arm64"}

#: Bounds of the commands this runs: a cold build takes about 5 minutes on 2 cores.
BUILD_TIMEOUT_S = 3600
CLI_TIMEOUT_S = 300


class EngineError(RuntimeError):
    """The engine cannot be built or its plugins installed; the message says why and what to do."""


#: Progress on stderr: stdout carries only what callers read (the bin folder, shell lines).
say = teller("engine")


# ---- where things live ----------------------------------------------------------------------


def engine_cache() -> Path:
    """The built CLIs, one folder per version, and ``bin/``."""
    return cache_root() / "engine"


def bin_dir() -> Path:
    """The folder to put on PATH: a link to the built CLI, nothing else."""
    return engine_cache() / "bin"


def plugin_mirror(env: Mapping[str, str] | None = None) -> Path | None:
    """The local plugin mirror: ``$HA_WEB_LAB_PLUGIN_MIRROR`` (set but empty: none), else
    ``../shared/plugins`` beside the checkout; None when that folder does not exist."""
    env = os.environ if env is None else env
    named = env.get("HA_WEB_LAB_PLUGIN_MIRROR")
    if named is not None and not named:
        return None
    folder = Path(named) if named else REPO.parent / "shared" / "plugins"
    return folder if folder.is_dir() else None


def engine_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` with the built CLI first on PATH, no update check, and Pulumi's home (the plugin
    cache) in the project's cache, so nothing lands in ~/.pulumi. With a plugin mirror, automatic
    plugin downloads are off: a plugin missing from the mirror fails at once instead of trying
    the registry, which this machine may not reach.

    Pulumi keeps the user's logins (``credentials.json``) in its home too: when the user has
    some in ~/.pulumi, ``PULUMI_CREDENTIALS_PATH`` keeps the CLI reading them there, so moving
    the plugin cache never logs the user out of their backend."""
    env = dict(os.environ if base is None else base)
    path = env.get("PATH", "")
    if str(bin_dir()) not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir()), path) if p)
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    if plugin_mirror(env) is not None:
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    if not env.get("PULUMI_HOME"):
        own = user_pulumi_home(env)
        if not env.get("PULUMI_CREDENTIALS_PATH") and (own / CREDENTIALS).is_file():
            env["PULUMI_CREDENTIALS_PATH"] = str(own)
        env["PULUMI_HOME"] = str(cache_root() / "pulumi-home")
    return env


CREDENTIALS = "credentials.json"


def user_pulumi_home(env: Mapping[str, str]) -> Path:
    """Pulumi's home as the CLI finds it for ``env``: ``$PULUMI_HOME``, else ``~/.pulumi``."""
    if env.get("PULUMI_HOME"):
        return Path(env["PULUMI_HOME"])
    return (Path(env["HOME"]) if env.get("HOME") else Path.home()) / ".pulumi"


def current_login(env: Mapping[str, str]) -> tuple[str, Path] | None:
    """The backend of the user's ``pulumi login`` (the ``current`` of ``credentials.json``) and
    the folder of that file; None when there is no login.

    Looked up where the CLI looks for ``env`` (``$PULUMI_CREDENTIALS_PATH``, else Pulumi's home),
    and, when the user set neither, in the project's Pulumi home too, where a login made with
    the built CLI (after ``. scripts/engine-env.sh``, without ~/.pulumi) is kept.
    """
    if env.get("PULUMI_CREDENTIALS_PATH"):
        folders = [Path(env["PULUMI_CREDENTIALS_PATH"])]
    else:
        folders = [user_pulumi_home(env)]
        if not env.get("PULUMI_HOME"):
            folders.append(cache_root() / "pulumi-home")
    for folder in folders:
        try:
            stored = json.loads((folder / CREDENTIALS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        current = stored.get("current") if isinstance(stored, dict) else None
        if isinstance(current, str) and current:
            return current, folder
    return None


def copy_project(dest: Path, stacks: str = "*", project_dir: Path = REPO) -> None:
    """A Pulumi workspace in ``dest`` for runs that must not touch the checkout (its stack files
    and state): the program's files, the stack files whose names match ``stacks`` (a glob), and a
    link to the project's virtualenv, which the program runs with."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = project_dir / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    for stack_file in project_dir.glob(f"Pulumi.{stacks}.yaml"):
        shutil.copy(stack_file, dest / stack_file.name)
    (dest / "venv").symlink_to(project_dir / "venv")


def declares_backend(project_dir: Path = REPO) -> bool:
    """Whether ``Pulumi.yaml`` names the project's backend (a top-level ``backend:``), which
    the CLI then uses unless ``PULUMI_BACKEND_URL`` says otherwise."""
    try:
        text = (project_dir / "Pulumi.yaml").read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r"^backend:", text, re.MULTILINE) is not None


def project_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a Pulumi run of this project gets. The backend is the user's when they chose one,
    in the CLI's order (``PULUMI_BACKEND_URL``, a ``backend:`` in Pulumi.yaml, ``pulumi
    login``), else a local file backend, so no account is needed; secrets are under the user's
    passphrase (``PULUMI_CONFIG_PASSPHRASE`` or ``..._FILE``), else one kept in a file (made
    once, mode 600); the official CLI when it is on PATH, else the built one with the mirror's
    plugins installed."""
    env = dict(os.environ if base is None else base)
    state = state_root()
    if not env.get("PULUMI_BACKEND_URL") and not declares_backend():
        login = current_login(env)
        if login is not None:
            url, folder = login
            env["PULUMI_BACKEND_URL"] = url
            # The login's token is in that folder, wherever Pulumi's home ends up.
            env.setdefault("PULUMI_CREDENTIALS_PATH", str(folder))
        else:
            (state / "pulumi-state").mkdir(parents=True, exist_ok=True)
            env["PULUMI_BACKEND_URL"] = f"file://{state / 'pulumi-state'}"
    # The CLI takes a set PULUMI_CONFIG_PASSPHRASE even when empty, a passphrase file only when
    # named: either is the user's, and wins.
    if "PULUMI_CONFIG_PASSPHRASE" not in env and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        state.mkdir(parents=True, exist_ok=True)
        passphrase = state / "passphrase"
        if not passphrase.is_file() or passphrase.stat().st_size == 0:
            fd = os.open(passphrase, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(os.urandom(32).hex() + "\n")
            say(
                f"made a passphrase for this machine's stack secrets: {passphrase} "
                "(keep it: without it the stacks' secrets cannot be read)"
            )
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase)
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    if shutil.which("pulumi", path=env.get("PATH")) is None:
        env = engine_env(env)
        if shutil.which("pulumi", path=env["PATH"]) is None:
            raise EngineError(
                "no Pulumi CLI: install it, or build it here with `make engine` "
                "(python3 -m halab.machine.engine)"
            )
    install_plugins(env)
    return env


# ---- Go ---------------------------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    """``go1.26.8`` or ``1.26`` -> (1, 26, 8) / (1, 26); a suffix such as ``rc1`` is dropped."""
    found = re.match(r"^(?:go)?(\d+(?:\.\d+)*)", text.strip())
    if not found:
        raise EngineError(f"not a Go version: {text!r}")
    return tuple(int(part) for part in found.group(1).split("."))


def go_needed(module_dir: Path = MODULE_DIR) -> str:
    """The ``go`` line of the wrapper's go.mod."""
    for line in (module_dir / "go.mod").read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "go":
            return fields[1]
    raise EngineError(f"{module_dir / 'go.mod'} has no go line")


def go_version(go: str) -> str | None:
    """``go env GOVERSION`` of that go, without switching toolchains; None when it cannot run."""
    try:
        done = subprocess.run(
            [go, "env", "GOVERSION"],
            env={**os.environ, "GOTOOLCHAIN": "local"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def go_for_build(cache: Path, needed: str) -> tuple[Path, str]:
    """A ``go`` binary at least ``needed`` and its ``GOVERSION``: the one on PATH, else the
    pinned toolchain."""
    on_path = shutil.which("go")
    if on_path:
        have = go_version(on_path)
        if have and version_tuple(have) >= version_tuple(needed):
            return Path(on_path), have
    toolchain = cache / "go-toolchain" / f"go{GO_PIN}"
    go = toolchain / "bin" / "go"
    if not os.access(go, os.X_OK):
        fetch_go_toolchain(toolchain)
    have = go_version(str(go))
    if not have or version_tuple(have) < version_tuple(needed):
        raise EngineError(f"the Go at {toolchain} ({have}) is not >= {needed}")
    return go, have


def go_toolchain_url(env: Mapping[str, str] | None = None) -> str:
    """The pinned toolchain's zip on the first proxy of ``$GOPROXY`` that is a URL."""
    env = os.environ if env is None else env
    proxy = env.get("GOPROXY", GO_PROXY_DEFAULT).split(",")[0].split("|")[0]
    if not proxy.startswith("http"):
        proxy = GO_PROXY_DEFAULT
    return f"{proxy.rstrip('/')}/golang.org/toolchain/@v/v0.0.1-go{GO_PIN}.linux-amd64.zip"


def fetch_go_toolchain(toolchain: Path) -> None:
    """Download, check and unpack the pinned Go into ``toolchain`` (replaced whole)."""
    if platform.machine() != "x86_64":
        raise EngineError(
            f"no Go >= {go_needed()} on PATH: install Go {GO_PIN} for {platform.machine()}"
        )
    url = go_toolchain_url()
    say(f"no Go >= {go_needed()} on PATH: fetching Go {GO_PIN} (70 MB) from {url}")
    toolchain.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=toolchain.parent) as scratch:
        archive = Path(scratch) / "go.zip"
        download(url, archive)
        digest = sha256_file(archive)
        if digest != GO_PIN_SHA256:
            raise EngineError(
                f"the Go {GO_PIN} download does not match its pinned sha256 "
                f"(got {digest}, want {GO_PIN_SHA256})"
            )
        unpacked = Path(scratch) / "unpacked"
        unzip_with_modes(archive, unpacked)
        inner = unpacked / "golang.org" / f"toolchain@v0.0.1-go{GO_PIN}.linux-amd64"
        if not (inner / "bin" / "go").is_file():
            raise EngineError(f"{url} holds no bin/go under {inner.relative_to(unpacked)}")
        shutil.rmtree(toolchain, ignore_errors=True)
        inner.rename(toolchain)


def download(url: str, dest: Path, tries: int = GO_DOWNLOAD_TRIES) -> None:
    """``url`` into ``dest``, a few tries with a pause between (a proxy hiccup is common)."""
    for attempt in range(1, tries + 1):
        try:
            with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:  # noqa: S310 - an https URL of ours
                shutil.copyfileobj(response, out, length=1 << 20)
            return
        except OSError as exc:
            if attempt == tries:
                raise EngineError(f"cannot download {url}: {exc}") from exc
            say(f"download failed ({exc}); try {attempt + 1} of {tries} in {attempt * 2} s")
            time.sleep(attempt * 2)


def sha256_file(path: Path) -> str:
    """The file's sha256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unzip_with_modes(archive: Path, dest: Path) -> None:
    """Unpack a zip, keeping the Unix modes it stores (``zipfile`` drops them: Go's binaries
    would not be executable). Entries without a mode get what Go's own unpacking gives the
    toolchain: executable under ``bin/`` and ``pkg/tool/``, else 0644."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise EngineError(f"{archive.name}: {info.filename!r} points outside the folder")
            zf.extract(info, dest)
            if info.is_dir():
                continue
            # Unix modes sit in the high bits, only when the zip was made on Unix (system 3).
            mode = (info.external_attr >> 16) & 0o777 if info.create_system == 3 else 0
            if not mode:
                executable = "/bin/" in f"/{info.filename}" or "/pkg/tool/" in info.filename
                mode = 0o755 if executable else 0o644
            target.chmod(mode)


# ---- the CLI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """One build of the CLI: its version, where it lives, and whether it was built just now."""

    version: str
    binary: Path
    built: bool
    seconds: float


def build_stamp(go_version_text: str, go_mod: bytes, go_sum: bytes) -> str:
    """What a binary was built from, so a changed wrapper, Go or flag set rebuilds even when the
    version (the folder name) stays the same."""
    head = f"go={go_version_text} tags={BUILD_TAGS} var={VERSION_VAR} pkg={CLI_PACKAGE}\n"
    return hashlib.sha256(head.encode() + go_mod + go_sum).hexdigest()


def inputs_digest(go_mod: bytes, go_sum: bytes) -> str:
    """What a binary was built from but the Go that built it: a CLI built here from these
    inputs is used as it is, with no Go and no network (a machine that freed the Go caches,
    a root that sees only the built CLI)."""
    head = f"tags={BUILD_TAGS} var={VERSION_VAR} pkg={CLI_PACKAGE}\n"
    return hashlib.sha256(head.encode() + go_mod + go_sum).hexdigest()


#: Beside a built CLI: :func:`inputs_digest` of what it was built from.
INPUTS_FILE = ".inputs"


def cached_cli(cache: Path, digest: str) -> tuple[str, Path] | None:
    """The version and binary of a complete build (stamp written last) from ``digest``'s
    inputs, if the cache holds one."""
    for out in sorted((cache / "engine").glob("pulumi-v*")):
        binary = out / CLI_BINARY
        try:
            same = (out / INPUTS_FILE).read_text(encoding="utf-8").strip() == digest
        except OSError:
            continue
        if same and (out / ".stamp").is_file() and os.access(binary, os.X_OK):
            return out.name.removeprefix("pulumi-"), binary
    return None


def go_env(cache: Path, go: Path) -> dict[str, str]:
    """Go's caches under the project's cache; never a toolchain switch; go.sum as committed is
    the truth (``-mod=readonly``), so a changed dependency fails loudly; a static binary."""
    return {
        **os.environ,
        "PATH": os.pathsep.join((str(go.parent), os.environ.get("PATH", ""))),
        "GOPATH": str(cache / "go"),
        "GOMODCACHE": str(cache / "go" / "pkg" / "mod"),
        "GOCACHE": str(cache / "go" / "build-cache"),
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=readonly",
        "CGO_ENABLED": "0",
    }


def _go(argv: Sequence[str], env: Mapping[str, str], what: str, timeout: float) -> str:
    done = subprocess.run(
        list(argv),
        cwd=MODULE_DIR,
        env=dict(env),
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise EngineError(f"{what} failed (exit {done.returncode}; Go's messages are above)")
    return done.stdout.strip()


def build_cli(cache: Path | None = None) -> Build:
    """The CLI of the pinned version, built unless the cached binary's stamp matches."""
    cache = cache_root() if cache is None else cache
    mod, sums = MODULE_DIR / "go.mod", MODULE_DIR / "go.sum"
    if not mod.is_file() or not sums.is_file():
        raise EngineError(f"missing {mod} or {sums}")
    started = time.monotonic()
    digest = inputs_digest(mod.read_bytes(), sums.read_bytes())
    found = cached_cli(cache, digest)
    if found is not None:
        version, binary = found
        link_only(cache / "engine" / "bin", binary)
        say(f"pulumi {version} cached (built from this go.mod and go.sum)")
        return Build(version, binary, False, time.monotonic() - started)
    go, go_version_text = go_for_build(cache, go_needed())
    env = go_env(cache, go)
    # Reads go.mod/go.sum only; downloads at most the .mod files on a cold cache.
    version = _go(
        [str(go), "list", "-m", "-f", "{{.Version}}", VERSION_MODULE],
        env,
        f"resolving {VERSION_MODULE} in {mod}",
        CLI_TIMEOUT_S,
    )
    if not version:
        raise EngineError(f"empty version for {VERSION_MODULE} in {mod}")
    out = cache / "engine" / f"pulumi-{version}"
    binary, stamp_file = out / CLI_BINARY, out / ".stamp"
    stamp = build_stamp(go_version_text, mod.read_bytes(), sums.read_bytes())
    fresh = (
        os.access(binary, os.X_OK)
        and stamp_file.is_file()
        and stamp_file.read_text(encoding="utf-8").strip() == stamp
    )
    if not fresh:
        say(f"building {CLI_BINARY} {version} (about 5 minutes from empty caches)")
        out.mkdir(parents=True, exist_ok=True)
        stamp_file.unlink(missing_ok=True)
        partial = out / f"{CLI_BINARY}.tmp"
        ldflags = f"-s -w -X {VERSION_VAR}={version}"
        _go(
            [str(go), "build", "-trimpath", "-tags", BUILD_TAGS, "-ldflags", ldflags,
             "-o", str(partial), CLI_PACKAGE],
            env,
            f"go build of {CLI_PACKAGE} {version}",
            BUILD_TIMEOUT_S,
        )  # fmt: skip
        partial.replace(binary)
        stamp_file.write_text(stamp + "\n", encoding="utf-8")
    # Also for a build made before this file existed: the next run needs no Go.
    (out / INPUTS_FILE).write_text(digest + "\n", encoding="utf-8")
    link_only(cache / "engine" / "bin", binary)
    build = Build(version, binary, not fresh, time.monotonic() - started)
    say(f"pulumi {version} {'built' if build.built else 'cached'} in {build.seconds:.0f} s")
    return build


def link_only(folder: Path, binary: Path) -> None:
    """``folder`` holds one link, to ``binary``, swapped in atomically. Nothing else belongs
    there: a plugin on PATH would shadow the plugin cache (older layouts linked stand-in plugins
    and a language host here)."""
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{binary.name}.tmp"
    partial.unlink(missing_ok=True)
    partial.symlink_to(binary)
    partial.replace(folder / binary.name)
    for entry in folder.iterdir():
        if entry.name != binary.name:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


# ---- plugins ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginTarball:
    """One release tarball of the mirror, named as the registry names them."""

    kind: str
    name: str
    version: str
    path: Path

    @classmethod
    def parse(cls, path: Path, platform_name: str) -> PluginTarball | None:
        """The tarball's plugin, or None when the name is not a registry tarball for us."""
        found = PLUGIN_TARBALL.match(path.name)
        if not found or found.group("platform") != platform_name:
            return None
        return cls(found.group("kind"), found.group("name"), found.group("version"), path)


def this_platform() -> str:
    """The registry's name of this machine's platform."""
    key = (platform.system(), platform.machine())
    if key not in PLATFORMS:
        raise EngineError(f"no plugin builds for {key[0]} {key[1]}")
    return PLATFORMS[key]


def mirror_tarballs(mirror: Path, platform_name: str) -> Iterator[PluginTarball]:
    """The mirror's plugins for the platform, in name order."""
    for path in sorted(mirror.glob("pulumi-*-v*.tar.gz")):
        tarball = PluginTarball.parse(path, platform_name)
        if tarball is not None:
            yield tarball


def _pulumi(env: Mapping[str, str], *args: str) -> str:
    pulumi = shutil.which("pulumi", path=env.get("PATH"))
    if pulumi is None:
        raise EngineError("no pulumi on PATH")
    done = subprocess.run(
        [pulumi, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise EngineError(f"pulumi {' '.join(args[:3])} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def install_plugins(env: Mapping[str, str], mirror: Path | None = None) -> int:
    """Every plugin of the mirror into the plugin cache of ``env``'s Pulumi (``PULUMI_HOME``);
    a plugin already cached at that version is left alone. Returns how many the mirror has;
    0 with no mirror, where the CLI downloads plugins from the registry on first use."""
    mirror = plugin_mirror(env) if mirror is None else mirror
    if mirror is None:
        say("no plugin mirror: the Pulumi CLI downloads plugins from the registry")
        return 0
    tarballs = list(mirror_tarballs(mirror, this_platform()))
    if not tarballs:
        say(f"warning: {mirror} has no {this_platform()} plugin tarballs")
        return 0
    cached = {
        (p["kind"], p["name"], p["version"])
        for p in json.loads(_pulumi(env, "plugin", "ls", "--json") or "[]") or []
    }
    for t in tarballs:
        if t.kind == "language":
            install_language_host(env, t)
        elif (t.kind, t.name, t.version) in cached:
            say(f"{t.kind} {t.name} v{t.version}: in the plugin cache")
        else:
            say(f"{t.kind} {t.name} v{t.version}: installing from {t.path}")
            _pulumi(
                env, "plugin", "install", t.kind, t.name, f"v{t.version}", "--file", str(t.path)
            )
    return len(tarballs)


def install_language_host(env: Mapping[str, str], tarball: PluginTarball) -> None:
    """A language host belongs to the CLI's distribution, not to the plugin cache (``pulumi
    plugin install language ...`` refuses it): its files go next to the pulumi binary, as in
    Pulumi's release archives. A CLI that ships its own host (the official one) keeps it."""
    pulumi = shutil.which("pulumi", path=env.get("PATH"))
    if pulumi is None:
        raise EngineError("no pulumi on PATH")
    cli_dir = Path(pulumi).resolve().parent
    marker = cli_dir / f".pulumi-language-{tarball.name}.version"
    host = cli_dir / f"pulumi-language-{tarball.name}"
    if os.access(host, os.X_OK) and not marker.is_file():
        say(f"language {tarball.name}: the CLI in {cli_dir} ships its own host; leaving it")
        return
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == tarball.version:
        say(f"language {tarball.name} v{tarball.version}: next to the CLI in {cli_dir}")
        return
    say(f"language {tarball.name} v{tarball.version}: unpacking {tarball.path} into {cli_dir}")
    with tarfile.open(tarball.path) as tar:
        members = [m for m in tar.getmembers() if not Path(m.name).name.startswith("LICENSE")]
        for member in members:
            # Only plain files and folders, inside cli_dir: a release tarball has nothing else.
            if not (member.isfile() or member.isdir()) or not (
                (cli_dir / member.name).resolve().is_relative_to(cli_dir)
            ):
                raise EngineError(f"{tarball.path.name}: unexpected member {member.name!r}")
            tar.extract(member, cli_dir, set_attrs=True)
    marker.write_text(tarball.version + "\n", encoding="utf-8")


# ---- commands ---------------------------------------------------------------------------------


def shell_lines(env: Mapping[str, str], names: Sequence[str]) -> str:
    """``export NAME=value`` lines of ``env``, quoted for a POSIX shell."""
    return "".join(f"export {name}={shlex.quote(env[name])}\n" for name in names if name in env)


#: What :func:`engine_env` may set, for ``--shell-env``.
ENGINE_VARIABLES = (
    "PATH",
    "PULUMI_SKIP_UPDATE_CHECK",
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
    "PULUMI_HOME",
    "PULUMI_CREDENTIALS_PATH",
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m halab.machine.engine``: build (or find) the CLI, install the mirror's plugins,
    print the bin folder; ``--print-bin-dir`` and ``--shell-env`` build nothing."""
    parser = argparse.ArgumentParser(
        prog="python3 -m halab.machine.engine",
        description="The Pulumi CLI built from the Go module proxy (cached by version and "
        "stamp), then the registry's plugins from the local plugin mirror "
        "($HA_WEB_LAB_PLUGIN_MIRROR, default ../shared/plugins). Prints the bin folder.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--print-bin-dir", action="store_true", help="print the bin folder; build nothing"
    )
    what.add_argument(
        "--shell-env",
        action="store_true",
        help="print the export lines that put the built CLI to use (scripts/engine-env.sh)",
    )
    args = parser.parse_args(argv)
    if args.print_bin_dir:
        print(bin_dir())
        return 0
    if args.shell_env:
        if not (bin_dir() / CLI_BINARY).exists():
            say(f"{bin_dir() / CLI_BINARY} is missing: run `make engine` first")
        print(shell_lines(engine_env(), ENGINE_VARIABLES), end="")
        return 0
    try:
        build_cli()
        install_plugins(engine_env())
    except EngineError as exc:
        say(f"error: {exc}")
        return 1
    print(bin_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
