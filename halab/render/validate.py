"""Prove every rendered file with the real tool that will read it, before any VM exists.

Input is a tree written by :func:`halab.render.hosts.write_tree` (``python -m halab render``): one
folder per host holding ``user-data``, ``network-config``, ``meta-data`` and ``files/<real path>``.
Each :class:`Check` runs one validator from Debian's packages on one host folder and returns
:class:`Problem` objects that carry the validator's own output, so a failure reads as the tool
wrote it. Nothing here changes a rendered file: where a tool needs the file's surroundings (the
TLS PEM and errorfile at their real paths, the node's own address to bind), it runs inside a
throwaway mount and network namespace (``unshare``) built for that one run, so the machine's own
``/etc`` and network stack are never touched.

Facts measured on Debian 12 (cloud-init 22.4, netplan 0.106, nginx 1.22, HAProxy 2.6,
Keepalived 2.2.7, systemd 252) that shaped the checks:

* ``cloud-init schema`` accepts unknown top-level keys, so :func:`cloud_config_keys` derives the
  known ones from the schema file the cloud-init package ships.
* cloud-init 22.4 has no network-config schema; ``cloud-init devel net-convert`` writes the very
  ``/etc/netplan/50-cloud-init.yaml`` a VM gets (v2 wrapped under ``network:``), and
  ``netplan generate --root-dir`` then rejects malformed addresses and unknown keys.
* ``nginx -t`` binds every ``listen`` address (it fails with ``Cannot assign requested address``
  for the web node's own IP), and ``keepalived --config-test`` warns about interfaces that do not
  exist: both run in a network namespace that has the host's interfaces and addresses (veth
  links named as in the network-config; this kernel has no ``dummy`` links).
* ``systemd-analyze verify`` works without systemd as PID 1.
* ``sshd -T`` needs only a config, a host key and its privilege-separation user and folder:
  the drop-ins are read through a main config that includes them first, as Debian's does, and for
  sshd the first value of a keyword wins. The user comes from a copy of /etc/passwd and the
  folder from a /run bind-mounted in a throwaway namespace, so the check passes on a machine that
  never had openssh-server. ``scripts/bootstrap.sh`` unpacks sshd from Debian's openssh-server
  package into the cache rather than installing it, so checking a config never starts a server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from glob import glob
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from halab.plumbing import hostdeps
from halab.plumbing.roots import cache_root
from halab.plumbing.tls import self_signed_pem

#: The validators' tools (their packages: scripts/apt-packages.txt).
TOOLS = (
    "cloud-init", "netplan", "haproxy", "nginx", "keepalived", "systemd-analyze", "shellcheck",
    "nft", "unshare", "mount", "ip", "openssl", "sshd", "ssh-keygen",
)  # fmt: skip

#: Where Debian's cloud-init package ships its cloud-config JSON schema.
CLOUD_CONFIG_SCHEMA_GLOB = (
    "/usr/lib/python3*/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json"
)
#: Shells whose scripts shellcheck understands (by the shebang's interpreter name).
SHELLS = frozenset({"sh", "bash", "dash", "ksh"})
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".mount", ".target")
TIMEOUT_S = 60
#: Extra places for tools: a non-root PATH often lacks the sbin folders that hold most of them.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
#: Debian's sshd_config reads these first; the lab's SSH settings live there.
SSHD_DROP_IN_DIR = "/etc/ssh/sshd_config.d/"
#: The user sshd drops privileges to; it must exist for ``sshd -T`` to run at all.
SSHD_PRIVSEP_USER = "sshd"


def unpacked_tool_dirs() -> tuple[str, ...]:
    """Where scripts/bootstrap.sh unpacks tools it must not install (sshd: no server starts)."""
    return (str(cache_root() / "tools" / "openssh-server" / "usr" / "sbin"),)


@dataclass(frozen=True)
class Problem:
    """One validator's complaint about one file of one host, in the validator's own words."""

    host: str
    check: str
    file: str
    message: str

    def __str__(self) -> str:
        body = "\n".join("    " + ln for ln in self.message.rstrip().splitlines())
        return f"{self.host}: {self.file}: [{self.check}]\n{body}"


class ToolMissingError(Exception):
    """A validator's program is not installed; the message names the Debian package."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.package = hostdeps.package_of(tool)
        # sshd is unpacked, never installed: an install would start a server on this machine.
        unpacked = "missing sshd: scripts/bootstrap.sh unpacks it into the cache (no server starts)"
        message = unpacked if tool == "sshd" else hostdeps.missing_message([tool])
        super().__init__(f"{message} (scripts/apt-packages.txt lists them all)")


class HostTree:
    """One host's folder of a rendered tree."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def name(self) -> str:
        """The host's name (its folder's name)."""
        return self.root.name

    @property
    def user_data(self) -> Path:
        """The host's cloud-init user-data."""
        return self.root / "user-data"

    @property
    def network_config(self) -> Path:
        """The host's cloud-init network-config (v2)."""
        return self.root / "network-config"

    def path_of(self, real_path: str) -> Path:
        """Where the file that lands at ``real_path`` on the host is in this tree."""
        return self.root / "files" / real_path.lstrip("/")

    def files(self) -> dict[str, str]:
        """Every config file the user-data writes: real path -> content."""
        base = self.root / "files"
        out: dict[str, str] = {}
        if base.is_dir():
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                real = "/" + path.relative_to(base).as_posix()
                out[real] = path.read_text(encoding="utf-8", errors="replace")
        return out

    def interfaces(self) -> list[tuple[str, list[str]]]:
        """(name, addresses) of each NIC the network-config sets up, as the VM will name them."""
        doc = yaml.safe_load(self.network_config.read_text(encoding="utf-8")) or {}
        doc = doc.get("network", doc) if isinstance(doc, dict) else {}
        result: list[tuple[str, list[str]]] = []
        for key, value in (doc.get("ethernets") or {}).items():
            eth = value or {}
            name = str(eth.get("set-name", key))
            result.append((name, [str(a) for a in eth.get("addresses") or []]))
        return result


# ---- selecting the files a check reads -----------------------------------------------------------


def _shebang_shell(content: str) -> str | None:
    """The shell a script names in its ``#!`` line (``/usr/bin/env bash`` too), else None."""
    if not content.startswith("#!"):
        return None
    words = content[2:].splitlines()[0].split()
    if not words:
        return None
    prog = Path(words[0]).name
    if prog == "env" and len(words) > 1:
        prog = Path(words[1]).name
    return prog if prog in SHELLS else None


def select_haproxy(files: Mapping[str, str]) -> list[str]:
    """HAProxy configs."""
    return [p for p in files if p.endswith("/haproxy.cfg")]


def select_nginx(files: Mapping[str, str]) -> list[str]:
    """nginx sites and conf.d snippets (what Debian's main config includes)."""
    dirs = ("/etc/nginx/sites-available/", "/etc/nginx/sites-enabled/", "/etc/nginx/conf.d/")
    return [p for p in files if p.startswith(dirs)]


def select_keepalived(files: Mapping[str, str]) -> list[str]:
    """Keepalived configs."""
    return [p for p in files if p.endswith("/keepalived.conf")]


def select_units(files: Mapping[str, str]) -> list[str]:
    """systemd unit files."""
    dirs = ("/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/")
    return [p for p in files if p.startswith(dirs) and p.endswith(UNIT_SUFFIXES)]


def select_shell(files: Mapping[str, str]) -> list[str]:
    """Every file whose ``#!`` line names a shell."""
    return [p for p, content in files.items() if _shebang_shell(content)]


def select_nftables(files: Mapping[str, str]) -> list[str]:
    """nftables rule files."""
    return [p for p in files if p.endswith(("/nftables.conf", ".nft"))]


def select_sshd(files: Mapping[str, str]) -> list[str]:
    """sshd drop-ins."""
    return [p for p in files if p.startswith(SSHD_DROP_IN_DIR) and p.endswith(".conf")]


def select_app(files: Mapping[str, str]) -> list[str]:
    """FastAPI apps (a ``main.py`` that builds a ``FastAPI`` object)."""
    return [p for p, c in files.items() if p.endswith("/main.py") and "FastAPI(" in c]


# ---- running tools -----------------------------------------------------------------------------


def which(tool: str) -> str:
    """Absolute path of ``tool``; raises :class:`ToolMissingError` naming its package."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN, *unpacked_tool_dirs()])
    found = shutil.which(tool, path=search)
    if found is None:
        raise ToolMissingError(tool)
    return found


@dataclass(frozen=True)
class Run:
    """What one tool run returned."""

    returncode: int
    output: str  # stdout and stderr, in that order

    def failed(self, *, quiet: bool = False) -> bool:
        """Non-zero exit, or (``quiet``: the tool prints nothing when all is well) any output."""
        return self.returncode != 0 or (quiet and bool(self.output.strip()))


def run(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] = {}) -> Run:
    """Run a validator with a C locale (stable messages) and a timeout; never raises on failure."""
    full_env = {**os.environ, "LC_ALL": "C", **env}
    full_env["PATH"] = os.pathsep.join([full_env.get("PATH", ""), *_SBIN])
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Run(124, f"{shlex.join(argv)}: timed out after {TIMEOUT_S} s")
    output = "\n".join(s.rstrip() for s in (proc.stdout, proc.stderr) if s.strip())
    return Run(proc.returncode, output)


def in_namespaces(
    argv: Sequence[str],
    *,
    interfaces: Iterable[tuple[str, Sequence[str]]] = (),
    binds: Iterable[tuple[Path, str]] = (),
) -> list[str]:
    """``argv`` wrapped to run in a fresh mount and network namespace.

    ``binds``: (folder, real path) pairs bind-mounted only inside the namespace, so a config sees
    its companions at their real paths while the machine's own files stay as they are. Each real
    path must already exist (it is a mount point; nothing is created outside the namespace).
    ``interfaces``: (name, addresses) links made in the namespace, as the host will have them.
    Not root: a user namespace maps the caller to root, which is enough for all of this.
    """
    lines = ["set -e"]
    for source, target in binds:
        lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
    lines.append("ip link set lo up")
    for index, (name, addresses) in enumerate(interfaces):
        # veth, not dummy: some kernels (this one) lack the dummy driver; veth pairs work anywhere.
        peer = f"hwlpeer{index}"
        lines.append(f"ip link add {shlex.quote(name)} type veth peer name {peer}")
        lines.extend(f"ip addr add {shlex.quote(a)} dev {shlex.quote(name)}" for a in addresses)
        lines.append(f"ip link set {shlex.quote(name)} up && ip link set {peer} up")
    lines.append('exec "$@"')
    which("ip")
    which("mount")
    wrapper = [which("unshare"), "--mount", "--net", "--propagation", "private"]
    if os.geteuid() != 0:
        wrapper[1:1] = ["--user", "--map-root-user"]
    return [*wrapper, "sh", "-c", "\n".join(lines), "sh", *argv]


# ---- the checks --------------------------------------------------------------------------------


@cache
def cloud_config_schema_path() -> Path:
    """The JSON schema file of the installed cloud-init package."""
    found = sorted(glob(CLOUD_CONFIG_SCHEMA_GLOB))
    if not found:
        raise ToolMissingError("cloud-init")
    return Path(found[-1])


def _schema_keys(node: Any, defs: Mapping[str, Any], seen: set[str]) -> tuple[set[str], list[str]]:
    """Property names and property-name patterns a schema node allows, following $ref/allOf."""
    keys: set[str] = set()
    patterns: list[str] = []
    if not isinstance(node, dict):
        return keys, patterns
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in seen:
        seen.add(ref)
        sub_keys, sub_patterns = _schema_keys(defs.get(ref.rsplit("/", 1)[-1]), defs, seen)
        keys |= sub_keys
        patterns += sub_patterns
    keys |= set(node.get("properties") or {})
    patterns += list(node.get("patternProperties") or {})
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(combinator) or []:
            sub_keys, sub_patterns = _schema_keys(sub, defs, seen)
            keys |= sub_keys
            patterns += sub_patterns
    return keys, patterns


@cache
def cloud_config_keys() -> tuple[frozenset[str], tuple[str, ...]]:
    """Top-level cloud-config keys (and key patterns) cloud-init's own schema knows."""
    schema = json.loads(cloud_config_schema_path().read_text(encoding="utf-8"))
    keys, patterns = _schema_keys(schema, schema.get("$defs", {}), set())
    return frozenset(keys), tuple(patterns)


def unknown_cloud_config_keys(doc: Mapping[str, Any]) -> list[str]:
    """Top-level keys of a cloud-config that cloud-init's schema does not know (it ignores them)."""
    keys, patterns = cloud_config_keys()
    return [
        str(k)
        for k in doc
        if str(k) not in keys and not any(re.search(p, str(k)) for p in patterns)
    ]


def check_user_data_schema(tree: HostTree) -> list[Problem]:
    """``cloud-init schema --config-file``: types, required keys, deprecated keys, the header."""
    result = run([which("cloud-init"), "schema", "--config-file", str(tree.user_data)])
    # The tool prints an empty "deprecations:" line even when there are none.
    deprecations = [
        ln
        for ln in result.output.splitlines()
        if ln.startswith("Cloud config schema deprecations:") and ln.split(":", 1)[1].strip()
    ]
    if result.failed() or deprecations:
        return [Problem(tree.name, "cloud-init schema", "user-data", result.output)]
    return []


def check_user_data_keys(tree: HostTree) -> list[Problem]:
    """Every top-level key is one cloud-init knows: its schema check lets unknown keys through."""
    text = tree.user_data.read_text(encoding="utf-8")
    if not text.startswith("#cloud-config\n"):
        return [
            Problem(tree.name, "cloud-config keys", "user-data", "first line is not #cloud-config")
        ]
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        return [Problem(tree.name, "cloud-config keys", "user-data", "not a YAML mapping")]
    unknown = unknown_cloud_config_keys(doc)
    if unknown:
        schema = cloud_config_schema_path()
        message = "\n".join(
            f"top-level key {k!r} is not in cloud-init's schema ({schema}): cloud-init ignores it"
            for k in unknown
        )
        return [Problem(tree.name, "cloud-config keys", "user-data", message)]
    return []


#: ``cloud-init`` with Python's ``netplan`` module hidden. Where netplan has a Python API
#: (trixie's netplan 1.1), cloud-init 25 writes through it into the machine's own
#: ``/etc/netplan``, whatever ``net-convert -d`` says (seen in a trixie root); without it,
#: cloud-init writes into the directory it was given, as 22.4 (bookworm) always does.
_CLOUD_INIT_WITHOUT_NETPLAN_API = (
    "import sys; sys.modules['netplan'] = None; sys.argv[0] = 'cloud-init'; "
    "from cloudinit.cmd.main import main; sys.exit(main())"
)


def cloud_init_argv(*args: str) -> list[str]:
    """``cloud-init ARGS`` run by the Python its script names, with no netplan API."""
    script = Path(which("cloud-init"))
    shebang = script.read_text(encoding="utf-8", errors="replace").partition("\n")[0]
    python = shebang.removeprefix("#!").split()[0] if shebang.startswith("#!") else "python3"
    return [python, "-c", _CLOUD_INIT_WITHOUT_NETPLAN_API, *args]


#: netplan's generator itself. ``netplan generate`` runs it, then reloads udev and systemd on
#: this machine whatever ``--root-dir`` says (netplan 1.1, trixie: read in its
#: netplan_cli/cli/commands/generate.py, and seen failing in a root without systemd); the
#: generator alone reads and checks the YAML and writes only under the root it is given.
NETPLAN_GENERATOR = Path("/usr/libexec/netplan/generate")


def netplan_generator() -> str:
    """The generator's path, or :class:`ToolMissingError` naming netplan's package."""
    if not NETPLAN_GENERATOR.is_file():
        raise ToolMissingError("netplan")
    return str(NETPLAN_GENERATOR)


def check_network_config(tree: HostTree) -> list[Problem]:
    """cloud-init turns the network-config into netplan YAML; netplan must accept it.

    ``cloud-init devel net-convert`` writes ``<dir>/etc/netplan/50-cloud-init.yaml`` exactly as
    cloud-init does on the VM, never into this machine's ``/etc/netplan``
    (:func:`cloud_init_argv`); netplan's generator checks it there (:data:`NETPLAN_GENERATOR`).
    That file is made 0600 first: cloud-init 22.4 writes it 0644 and netplan then warns about
    the mode, which says nothing about the content.
    """
    with tempfile.TemporaryDirectory(prefix="hwl-netplan-") as tmp:
        convert = run(
            cloud_init_argv(
                *("devel", "net-convert", "-p", str(tree.network_config), "-k", "yaml"),
                *("-d", tmp, "-D", "debian", "-O", "netplan"),
            )
        )
        written = sorted(Path(tmp, "etc", "netplan").glob("*.yaml"))
        if convert.failed() or not written:
            return [Problem(tree.name, "cloud-init net-convert", "network-config", convert.output)]
        for path in written:
            path.chmod(0o600)
        generate = run([netplan_generator(), "--root-dir", tmp])
        if generate.failed(quiet=True):
            return [Problem(tree.name, "netplan generate", "network-config", generate.output)]
    return []


def check_haproxy(tree: HostTree) -> list[Problem]:
    """``haproxy -c`` with the config, errorfile and PEM at their real paths.

    The folder holding haproxy.cfg (``/etc/haproxy``) is copied and bind-mounted over the real one
    inside a private mount namespace. The only change to what was rendered: a ``crt`` file that
    holds the render command's secret placeholder instead of PEM gets a throwaway self-signed
    certificate (the real one is a Pulumi secret). The config itself is never rewritten.
    """
    problems = []
    for real in select_haproxy(tree.files()):
        haproxy = which("haproxy")  # first, so a missing HAProxy is what the failure names
        real_dir = str(Path(real).parent)
        with tempfile.TemporaryDirectory(prefix="hwl-haproxy-") as tmp:
            stage = Path(tmp, "stage")
            shutil.copytree(tree.path_of(real_dir), stage)
            config = (stage / Path(real).name).read_text(encoding="utf-8")
            for crt in re.findall(r"\bcrt\s+(\S+)", config):
                inside = (
                    stage / Path(crt).relative_to(real_dir)
                    if Path(crt).is_relative_to(real_dir)
                    else None
                )
                if (
                    inside is not None
                    and inside.is_file()
                    and "-----BEGIN" not in inside.read_text()
                ):
                    inside.write_text(self_signed_pem())
            if not Path(real_dir).is_dir():
                raise ToolMissingError("haproxy")  # the package ships /etc/haproxy: the mount point
            argv = in_namespaces([haproxy, "-c", "-f", real], binds=[(stage, real_dir)])
            result = run(argv)
        if result.failed() or "[WARNING]" in result.output or "[ALERT]" in result.output:
            problems.append(Problem(tree.name, "haproxy -c", real, result.output))
    return problems


def nginx_main_config(folder: Path, site: Path) -> Path:
    """A minimal main nginx.conf that includes ``site``, with its own pid, log and temp paths."""
    conf = folder / "nginx.conf"
    q = str(folder)
    conf.write_text(
        f"""pid {q}/nginx.pid;
error_log stderr;
events {{}}
http {{
    access_log off;
    client_body_temp_path {q}/body;
    proxy_temp_path {q}/proxy;
    fastcgi_temp_path {q}/fastcgi;
    uwsgi_temp_path {q}/uwsgi;
    scgi_temp_path {q}/scgi;
    include {site};
}}
""",
        encoding="utf-8",
    )
    return conf


#: What ``nginx -t`` prints when all is well; anything else (a [warn] too) is a problem.
_NGINX_OK = re.compile(r"^nginx: (the )?configuration file .* (syntax is ok|test is successful)$")


def check_nginx(tree: HostTree) -> list[Problem]:
    """``nginx -t`` on each site inside a minimal main config, in a namespace with the host's IPs.

    ``nginx -t`` binds each ``listen`` address, so the site's own ``listen <node IP>:80`` needs that
    address on a local interface: the namespace has the host's interfaces and addresses.
    """
    problems = []
    for real in select_nginx(tree.files()):
        with tempfile.TemporaryDirectory(prefix="hwl-nginx-") as tmp:
            conf = nginx_main_config(Path(tmp), tree.path_of(real).resolve())
            argv = [which("nginx"), "-t", "-p", tmp, "-c", str(conf), "-e", "stderr"]
            result = run(in_namespaces(argv, interfaces=tree.interfaces()))
        noise = [ln for ln in result.output.splitlines() if ln.strip() and not _NGINX_OK.match(ln)]
        if result.failed() or noise:
            problems.append(Problem(tree.name, "nginx -t", real, result.output))
    return problems


#: How a process ended by SIGTERM comes back: Python's negative signal number, or a shell's
#: 128 + 15.
SELF_TERMINATED = frozenset({-signal.SIGTERM, 128 + signal.SIGTERM})


def check_keepalived(tree: HostTree) -> list[Problem]:
    """``keepalived --config-test``: silent and 0 (no security warning, no missing interface)."""
    problems = []
    for real in select_keepalived(tree.files()):
        path = tree.path_of(real).resolve()
        argv = [which("keepalived"), "--config-test", "-f", str(path)]
        result = run(in_namespaces(argv, interfaces=tree.interfaces()))
        if (
            result.returncode in SELF_TERMINATED
            and not result.output.strip()
            and "track_script" in path.read_text(encoding="utf-8")
        ):
            # Keepalived 2.2.7 ends the config test of any config with a track_script by a
            # SIGTERM to itself (seen with strace, even for `script "/bin/true"`); what it
            # found wrong it prints first, and silence is still required.
            continue
        if result.failed(quiet=True):
            problems.append(Problem(tree.name, "keepalived --config-test", real, result.output))
    return problems


def check_units(tree: HostTree) -> list[Problem]:
    """``systemd-analyze verify`` on each unit: silent and 0 (an unknown key only warns).

    ``--man=no``: a ``Documentation=man:`` page being installed here says nothing about the unit.
    """
    problems = []
    for real in select_units(tree.files()):
        path = str(tree.path_of(real).resolve())
        result = run([which("systemd-analyze"), "verify", "--man=no", path])
        if result.failed(quiet=True):
            problems.append(Problem(tree.name, "systemd-analyze verify", real, result.output))
    return problems


def _command_strings(tree: HostTree) -> list[tuple[str, str]]:
    """(label, text) of each user-data ``runcmd``/``bootcmd`` entry cloud-init hands to ``sh``."""
    doc = yaml.safe_load(tree.user_data.read_text(encoding="utf-8"))
    out = []
    for key in ("bootcmd", "runcmd"):
        for index, entry in enumerate((doc or {}).get(key) or []):
            if isinstance(entry, str):  # a list entry is exec'd directly, no shell involved
                out.append((f"user-data {key}[{index}]", entry))
    return out


def check_shell(tree: HostTree) -> list[Problem]:
    """``shellcheck`` on every script the lab writes, and on user-data commands run by ``sh``."""
    problems = []
    for real in select_shell(tree.files()):
        result = run([which("shellcheck"), "-f", "gcc", str(tree.path_of(real).resolve())])
        if result.failed(quiet=True):
            problems.append(Problem(tree.name, "shellcheck", real, result.output))
    for label, text in _command_strings(tree):
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as handle:
            handle.write("#!/bin/sh\n" + text + "\n")
        try:
            result = run([which("shellcheck"), "-f", "gcc", handle.name])
        finally:
            os.unlink(handle.name)
        if result.failed(quiet=True):
            problems.append(Problem(tree.name, "shellcheck", label, result.output))
    return problems


def check_nftables(tree: HostTree) -> list[Problem]:
    """``nft -c -f`` in a throwaway network namespace: the machine's ruleset is never touched."""
    problems = []
    for real in select_nftables(tree.files()):
        argv = [which("nft"), "-c", "-f", str(tree.path_of(real).resolve())]
        result = run(in_namespaces(argv, interfaces=tree.interfaces()))
        if result.failed(quiet=True):
            problems.append(Problem(tree.name, "nft -c", real, result.output))
    return problems


_ENV_LOCK = threading.Lock()


def load_app(path: Path, host_name: str) -> Any:
    """Import a rendered FastAPI app (``app`` of ``path``) as the unit runs it for ``host_name``.

    The app reads ``HWL_HOST_NAME`` when imported; the environment is process-wide, so imports
    are serialised while it is set.
    """
    spec = importlib.util.spec_from_file_location(f"hwl_app_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    with _ENV_LOCK:
        before = os.environ.get("HWL_HOST_NAME")
        os.environ["HWL_HOST_NAME"] = host_name
        try:
            spec.loader.exec_module(module)
        finally:
            if before is None:
                del os.environ["HWL_HOST_NAME"]
            else:
                os.environ["HWL_HOST_NAME"] = before
    return module.app


#: Paths the tutorial's app serves on every web node, besides the health check HAProxy uses.
APP_PATHS = ("/", "/test")
#: The path in HAProxy's health check: ``http-check send ... uri /x`` or ``option httpchk GET /x``.
_HEALTH_URI = re.compile(
    # [ \t], not \s: a bare "option httpchk" line must not match into the next line.
    r"^[ \t]*(?:http-check[ \t]+send\b[^\n]*?[ \t]uri[ \t]+(\S+)"
    r"|option[ \t]+httpchk[ \t]+\S+[ \t]+(\S+))",
    re.M,
)


def health_paths(tree: HostTree) -> set[str]:
    """Every path the lab's HAProxy configs (on the sibling lb hosts) check on the web nodes."""
    paths: set[str] = set()
    for cfg in tree.root.parent.glob("*/files/**/haproxy.cfg"):
        for match in _HEALTH_URI.finditer(cfg.read_text(encoding="utf-8", errors="replace")):
            paths.add(match.group(1) or match.group(2))
    return paths


def _testclient() -> Any:
    """FastAPI's TestClient class (ImportError when fastapi or httpx is absent)."""
    import warnings

    with _ENV_LOCK, warnings.catch_warnings():
        # Starlette nags that its TestClient wants a newer httpx: not a finding about the app.
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
        from fastapi.testclient import TestClient
    return TestClient


def sshd_effective_config(tree: HostTree) -> tuple[Run, dict[str, str]]:
    """``sshd -T`` with the host's drop-ins: the run, and the settings sshd would use (lower-case
    keyword -> value; empty when sshd refused the config)."""
    includes = [f"Include {tree.path_of(p).resolve()}" for p in sorted(select_sshd(tree.files()))]
    with tempfile.TemporaryDirectory(prefix="hwl-sshd-") as tmp:
        host_key = Path(tmp) / "ssh_host_ed25519_key"
        keygen = run([which("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
        if keygen.failed():
            return keygen, {}
        main = Path(tmp) / "sshd_config"
        main.write_text("\n".join([*includes, f"HostKey {host_key}", ""]), encoding="utf-8")
        # sshd refuses to start without its privilege-separation user and folder, which only an
        # installed openssh-server creates. The machine is never changed for that: the namespace
        # sees a copy of /etc/passwd that has the user, and a /run of its own with the folder.
        passwd = Path(tmp) / "passwd"
        passwd.write_text(_passwd_with_privsep_user(), encoding="utf-8")
        run_dir = Path(tmp) / "run"
        (run_dir / "sshd").mkdir(parents=True)
        result = run(
            in_namespaces(
                [which("sshd"), "-T", "-f", str(main)],
                binds=[(passwd, "/etc/passwd"), (run_dir, "/run")],
            )
        )
    if result.failed():
        return result, {}
    pairs = (line.split(" ", 1) for line in result.output.splitlines() if " " in line)
    return result, {key: value for key, value in pairs}


def _passwd_with_privsep_user() -> str:
    """This machine's /etc/passwd, plus sshd's privilege-separation user when it has none."""
    text = Path("/etc/passwd").read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    if any(line.split(":", 1)[0] == SSHD_PRIVSEP_USER for line in text.splitlines()):
        return text
    # Debian's openssh-server makes it as a system user with this home and no login shell.
    return text + f"{SSHD_PRIVSEP_USER}:x:65534:65534::/run/sshd:/usr/sbin/nologin\n"


def check_sshd(tree: HostTree) -> list[Problem]:
    """``sshd -T``: sshd accepts the drop-ins (an unknown or misspelt keyword is fatal to sshd)."""
    if not select_sshd(tree.files()):
        return []
    result, settings = sshd_effective_config(tree)
    if not settings:
        return [Problem(tree.name, "sshd -T", SSHD_DROP_IN_DIR, result.output)]
    return []


def check_app(tree: HostTree) -> list[Problem]:
    """FastAPI's TestClient: ``/``, ``/test``, the LBs' health path and every other GET route
    answer 200 with a body that names the host (``HWL_HOST_NAME``, as the unit sets it)."""
    try:
        from fastapi.routing import APIRoute

        client_class = _testclient()
    except ImportError:
        message = (
            "fastapi (with httpx) is not installed: `apt-get install python3-fastapi "
            "python3-httpx`, or `pip install -r requirements-dev.txt`"
        )
        return [Problem(tree.name, "fastapi", "(app)", message)]
    problems = []
    for real in select_app(tree.files()):
        lines: list[str] = []
        try:
            app = load_app(tree.path_of(real), tree.name)
            paths = set(APP_PATHS) | health_paths(tree)
            paths |= {
                r.path
                for r in app.routes
                if isinstance(r, APIRoute) and "GET" in (r.methods or ()) and not r.param_convertors
            }
            with client_class(app) as client:
                for path in sorted(paths):
                    response = client.get(path)
                    if response.status_code != 200 or tree.name not in response.text:
                        lines.append(
                            f"GET {path} -> {response.status_code} {response.text[:200]!r} "
                            f"(want 200 and a body naming {tree.name!r})"
                        )
        except Exception:
            lines = [traceback.format_exc()]
        if lines:
            problems.append(Problem(tree.name, "fastapi TestClient", real, "\n".join(lines)))
    return problems


# ---- the registry and the runner ---------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One validator: which of a host's files it reads, and how it runs."""

    name: str
    #: real path -> content of a host's files -> the ones it checks; None: it checks the host's
    #: user-data or network-config, which every host has.
    select: Callable[[Mapping[str, str]], list[str]] | None
    run: Callable[[HostTree], list[Problem]]

    def applies(self, files: Mapping[str, str]) -> bool:
        """Whether a host with these files has anything for this check."""
        return self.select is None or bool(self.select(files))


CHECKS: tuple[Check, ...] = (
    Check("cloud-init-schema", None, check_user_data_schema),
    Check("cloud-config-keys", None, check_user_data_keys),
    Check("netplan", None, check_network_config),
    Check("haproxy", select_haproxy, check_haproxy),
    Check("nginx", select_nginx, check_nginx),
    Check("keepalived", select_keepalived, check_keepalived),
    Check("systemd-analyze", select_units, check_units),
    Check("shellcheck", select_shell, check_shell),
    Check("nftables", select_nftables, check_nftables),
    Check("sshd", select_sshd, check_sshd),
    Check("fastapi", select_app, check_app),
)
CHECKS_BY_NAME: dict[str, Check] = {c.name: c for c in CHECKS}


def run_check(check: Check, tree: HostTree) -> list[Problem]:
    """One check on one host; a missing tool or a crash is a problem, never a silent pass."""
    try:
        return check.run(tree)
    except ToolMissingError as exc:
        return [Problem(tree.name, check.name, "(tool)", str(exc))]
    except Exception:
        return [Problem(tree.name, check.name, "(crash)", traceback.format_exc())]


def run_checks(tasks: Sequence[tuple[Check, HostTree]]) -> list[list[Problem]]:
    """Many (check, host) runs, in parallel: the tools wait on I/O and start-up, not on Python."""
    if not tasks:
        return []
    workers = min(len(tasks), 2 * (os.cpu_count() or 1), 8)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda task: run_check(*task), tasks))


def host_trees(out_dir: Path) -> list[HostTree]:
    """The host folders of a rendered tree (those holding a user-data)."""
    return [HostTree(p.parent) for p in sorted(Path(out_dir).glob("*/user-data"))]


def validate_tree(out_dir: Path, hosts: Iterable[str] | None = None) -> list[Problem]:
    """Every applicable check on every host folder under ``out_dir``; empty means all is proven.

    ``hosts``: only these folders (the render command passes the hosts it just wrote, so a
    folder left from an earlier render of a bigger lab is not judged).
    """
    trees = host_trees(out_dir)
    if hosts is not None:
        wanted = set(hosts)
        trees = [t for t in trees if t.name in wanted]
    if not trees:
        return [Problem(str(out_dir), "render", "(tree)", "no host folder with a user-data here")]
    tasks = [(c, t) for t in trees for c in CHECKS if c.applies(t.files())]
    return [p for problems in run_checks(tasks) for p in problems]
