"""The emulator's HTTPS API: FortiOS's REST paths, token auth and response shape.

What the provider calls (terraform-provider-fortios 1.20.0, its in-tree ``sdk/``):

- ``GET /api/v2/monitor/system/status`` when it starts (``CheckUP``), with no token and no
  check of the answer beyond a transport error (sdk/request/request.go ``CheckValid``);
- ``GET /api/v2/cmdb/system/global`` without ``vdom``, for ``version`` (``GetDeviceVersion``);
- ``POST /api/v2/cmdb/<path>/<name>``, ``GET``/``PUT``/``DELETE .../<mkey>`` with
  ``?vdom=<vdom>&access_token=<token>`` (sdk/sdkcore/sdkfos.go, request.go ``buildURL``); a
  create's ``mkey`` becomes the resource's id (a number for a policy, read with
  ``o["mkey"].(float64)`` in fortios/resource_firewall_policy.go).

Every answer is FortiOS's envelope (``http_method``, ``status``, ``http_status``, ``vdom``,
``path``, ``name``, ``mkey``, ``results``, ``serial``, ``version``, ``build``; a create's shape
as a FortiGate answered one in rapid7/insightconnect-plugins pull request #1027), and carries
the header ``X-Fortigate-Emulator`` so nobody takes it for a FortiGate.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from halab.fortigate import EMULATOR_NOTICE, schema
from halab.fortigate.errors import FortiOSError, unproven
from halab.fortigate.nft import Forwarding, NftApplier, parse_interface
from halab.fortigate.site import TLS_DIR
from halab.fortigate.store import DEFAULT_INTERFACES, Store
from halab.fortigate.tls import make_ca_and_server_cert

CMDB = "/api/v2/cmdb/"
STATUS_PATH = "/api/v2/monitor/system/status"
GLOBAL_PATH = "/api/v2/cmdb/system/global"
HOSTNAME = "fortigate-emulator"


def _envelope(method: str, vdom: str | None, path: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"http_method": method}
    if vdom is not None:
        out["vdom"] = vdom
    out |= {
        "path": path,
        "name": name,
        "serial": schema.SERIAL,
        "version": schema.FORTIOS_VERSION,
        "build": schema.FORTIOS_BUILD,
    }
    return out


@dataclass
class Request:
    """What one HTTP request asks, split the way FortiOS's API reads it."""

    method: str
    path: str
    query: dict[str, list[str]]
    token: str | None
    body: bytes


class Api:
    """The routing and the answers, apart from the socket (the unit tests call this directly)."""

    def __init__(self, store: Store, token: str, forwarding: Forwarding | None = None) -> None:
        self.store = store
        self._token = token
        #: With ``--apply-nft``: every successful change is loaded into the kernel, or undone.
        self.forwarding = forwarding
        self._revision = 0
        self._lock = threading.Lock()

    def _revision_hash(self) -> str:
        return hashlib.md5(str(self._revision).encode(), usedforsecurity=False).hexdigest()

    def handle(self, request: Request) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one request."""
        if request.token is None or not hmac.compare_digest(
            request.token.encode(), self._token.encode()
        ):
            # The provider names 401 "Not Authorized - Request without successful login
            # session" (sdk/sdkcore/forticlient.go); the body FortiOS sends with it is unproven,
            # so it is the envelope's least.
            return 401, {"http_method": request.method, "status": "error", "http_status": 401}
        fixed = {STATUS_PATH: self._status, GLOBAL_PATH: self._global}
        if request.path in fixed and request.method == "GET":
            return 200, fixed[request.path]()
        parts = request.path.removeprefix(CMDB).split("/")
        if not request.path.startswith(CMDB) or len(parts) not in (2, 3) or not all(parts[:2]):
            return self._error(request, None, "", "", unproven(f"path {request.path!r}"))
        table_path = "/".join(parts[:2])
        mkey = unquote(parts[2]) if len(parts) == 3 and parts[2] else None
        vdom = request.query.get("vdom", ["root"])[0]
        try:
            return 200, self._cmdb(request, vdom, table_path, mkey)
        except FortiOSError as error:
            return self._error(request, vdom, table_path, mkey or "", error)

    def _cmdb(
        self, request: Request, vdom: str, table_path: str, mkey: str | None
    ) -> dict[str, Any]:
        path, name = table_path.split("/")
        out = _envelope(request.method, vdom, path, name)
        if request.method == "GET":
            if mkey is None:
                out["results"] = self.store.list(vdom, table_path)
            else:
                out["results"] = [self.store.get(vdom, table_path, mkey)]
                out["mkey"] = self._typed(table_path, mkey)
            out |= {"revision": self._revision_hash(), "status": "success", "http_status": 200}
            return out
        with self._lock:
            old = self._revision_hash()
            before = self.store.snapshot() if self.forwarding is not None else None
            if request.method == "POST" and mkey is None:
                out["mkey"] = self.store.create(vdom, table_path, self._json(request))
            elif request.method == "PUT" and mkey is not None:
                out["mkey"] = self.store.update(vdom, table_path, mkey, self._json(request))
            elif request.method == "DELETE" and mkey is not None:
                self.store.delete(vdom, table_path, mkey)
                out["mkey"] = self._typed(table_path, mkey)
            else:
                where = "with" if mkey is not None else "without"
                raise unproven(f"{request.method} {where} a key on {table_path}")
            if self.forwarding is not None and before is not None:
                try:
                    self.forwarding.sync(self.store)
                except FortiOSError:
                    # The kernel keeps the last ruleset loaded, so the store goes back to what
                    # that ruleset means: the two never disagree.
                    self.store.restore(before)
                    raise
            self._revision += 1
            out |= {
                "status": "success",
                "http_status": 200,
                "revision": self._revision_hash(),
                "revision_changed": True,
                "old_revision": old,
            }
            return out

    @staticmethod
    def _typed(table_path: str, mkey: str) -> int | str:
        table = schema.TABLES.get(table_path)
        if table is not None and table.mkey_is_integer and mkey.isdigit():
            return int(mkey)
        return mkey

    @staticmethod
    def _json(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise unproven("a body that is not JSON") from None
        if not isinstance(body, dict):
            raise unproven("a JSON body that is not an object")
        return body

    @staticmethod
    def _error(
        request: Request, vdom: str | None, table_path: str, mkey: str, error: FortiOSError
    ) -> tuple[int, dict[str, Any]]:
        path, _, name = table_path.partition("/")
        out = _envelope(request.method, vdom, path, name)
        if mkey:
            out["mkey"] = mkey
        out |= {"status": "error", "http_status": error.http_status}
        if error.code is not None:
            out["error"] = error.code
        if error.cli_error:
            out["cli_error"] = error.cli_error
        return error.http_status, out

    def _status(self) -> dict[str, Any]:
        # The fields FortiOS 7.2 answers to the status call, as the earlier stand-in had them.
        out = _envelope("GET", "root", "system", "status")
        out |= {
            "results": {
                "model_name": "FortiGate",
                "model_number": "VM64",
                "model": "FGVM64",
                "hostname": HOSTNAME,
                "emulator": EMULATOR_NOTICE,
            },
            "status": "success",
            "http_status": 200,
        }
        return out

    def _global(self) -> dict[str, Any]:
        # ``version`` at the top is what the provider reads (GetDeviceVersion).
        out = _envelope("GET", None, "system", "global")
        out |= {
            "results": {"hostname": HOSTNAME, "vdom-mode": "no-vdom"},
            "revision": self._revision_hash(),
            "status": "success",
            "http_status": 200,
        }
        if len(self.store.vdoms()) > 1:
            out["results"]["vdom-mode"] = "multi-vdom"
        return out


def _token_of(handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> str | None:
    # The provider sends the token as ``access_token`` in the query (sdk/request/request.go
    # buildURL); Fortinet's REST API docs also take ``Authorization: Bearer <token>``.
    header = handler.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    values = query.get("access_token")
    return values[0] if values else None


@dataclass
class Running:
    """A serving emulator: its address, its CA, its token, its store and what it was asked."""

    host: str
    ca_file: Path
    token: str
    store: Store
    requests: list[tuple[str, str, int]]


def _handler(api: Api, seen: list[tuple[str, str, int]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "fortigate-emulator"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, split.path, query, _token_of(self, query), body)
            status, answer = api.handle(request)
            # Never the token: the request's path only, as FortiOS's own log filters it.
            seen.append((self.command, split.path, status))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Fortigate-Emulator", EMULATOR_NOTICE)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextmanager
def serve(
    store: Store,
    token: str,
    *,
    cert: Path,
    key: Path,
    ca: Path,
    address: tuple[str, int] = ("127.0.0.1", 0),
    forwarding: Forwarding | None = None,
) -> Iterator[Running]:
    """Serve the API over HTTPS until the block ends (loading rules with ``forwarding``)."""
    seen: list[tuple[str, str, int]] = []
    if forwarding is not None:
        # The kernel starts from the configuration the state file kept; a state it cannot load
        # stops the start rather than serve a store the firewall does not follow.
        forwarding.sync(store)
    server = ThreadingHTTPServer(address, _handler(Api(store, token, forwarding), seen))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Running(f"{host!s}:{port}", ca, token, store, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError("give ADDR:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]") or "127.0.0.1", int(port)


def _interface(text: str) -> tuple[str, str | None]:
    try:
        return parse_interface(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(args: argparse.Namespace) -> int:
    state = Path(args.state) if args.state else None
    host, port = args.listen
    tls_dir = Path(args.tls_dir or (state.parent if state else Path.cwd()) / TLS_DIR)
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = (tls_dir / n for n in ("ca.pem", "server.pem", "server.key"))
    if not (ca.exists() and cert.exists() and key.exists()):
        make_ca_and_server_cert(tls_dir, host, days=365)
    token_file = Path(args.token_file) if args.token_file else tls_dir / "token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24) + "\n")
        token_file.chmod(0o600)
    token = token_file.read_text().strip()
    ports = dict(args.interface or [(name, None) for name in DEFAULT_INTERFACES])
    vdoms = args.vdom or ["root"]
    store = Store(vdoms=vdoms, interfaces=ports, state_file=state)
    forwarding = None
    if args.apply_nft:
        if len(vdoms) != 1:
            # Each VDOM is a firewall of its own; one network namespace holds one.
            print("--apply-nft takes one VDOM", file=sys.stderr)
            return 2
        nft_file = Path(args.nft_file or (state.parent if state else Path.cwd()) / "fortigate.nft")
        linux = {name: ifname for name, ifname in ports.items() if ifname is not None}
        forwarding = Forwarding(NftApplier(nft_file), linux, vdoms[0])
    try:
        with serve(store, token, cert=cert, key=key, ca=ca, address=(host, port),
                   forwarding=forwarding) as running:  # fmt: skip
            print(
                f"{EMULATOR_NOTICE}\nlistening on https://{running.host} (CA: {ca}; token in "
                f"{token_file}; state: {state or 'memory only'}; forwarding: "
                f"{'nft' if forwarding else 'off'}); Ctrl-C stops it",
                file=sys.stderr,
                flush=True,
            )
            with suppress(KeyboardInterrupt):
                threading.Event().wait()
    except FortiOSError as error:
        # Only the first load can fail here: the state holds what cannot be forwarded.
        print(f"fortigate-emulator: not started: {error.cli_error}", file=sys.stderr)
        return 1
    return 0


def add_fortigate_command(sub: Any) -> None:
    """``python -m halab fortigate-emulator``: serve the emulator until interrupted."""
    command = sub.add_parser(
        "fortigate-emulator",
        help="serve a FortiOS REST API emulator (a test double) for the edge's objects",
        description=(
            "A FortiOS REST API of the lab's own for the FortiGate edge's objects (addresses, "
            "VIPs, VIP groups, custom services, policies): strict where FortiOS is strict, and "
            "refusing what no public source settles (docs/fortigate-emulator.md). Not a "
            "FortiGate. HTTPS with a throwaway CA (ca.pem in --tls-dir) and a token."
        ),
    )
    command.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 8443),
        metavar="ADDR:PORT",
        help="where to serve (default 127.0.0.1:8443)",
    )
    command.add_argument(
        "--state",
        default=None,
        metavar="FILE",
        help="keep the configuration in this JSON file (default: memory only)",
    )
    command.add_argument(
        "--tls-dir",
        default=None,
        metavar="DIR",
        help=f"CA, certificate and token (default: {TLS_DIR}/ beside the state)",
    )
    command.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="the API token (made when missing; default: token in --tls-dir)",
    )
    command.add_argument(
        "--vdom", action="append", metavar="NAME", help="a VDOM it has (repeat; default: root)"
    )
    command.add_argument(
        "--interface",
        action="append",
        type=_interface,
        metavar="NAME[=LINUX]",
        help=(
            "an interface it has, and the Linux interface it stands for with --apply-nft "
            "(repeat; e.g. port1=eth0; default: any, port1 ... port10)"
        ),
    )
    command.add_argument(
        "--apply-nft",
        action="store_true",
        help=(
            "forward by what it was told: after each change load its VIPs and policies as "
            "nftables rules (table inet fortigate) with nft -f, undoing a change nft refuses"
        ),
    )
    command.add_argument(
        "--nft-file",
        default=None,
        metavar="FILE",
        help="where the loaded ruleset is kept (default: fortigate.nft beside the state)",
    )
    command.set_defaults(func=_run)
