"""The emulator's HTTP side: FortiOS's paths, token auth, envelope and error shapes.

Sources as in halab/fortigate/server.py: the provider's in-tree SDK (terraform-provider-fortios
1.20.0 sdk/) for the calls and how answers are parsed; issue #297/#244/#193 for error bodies.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from halab.cli import build_parser
from halab.fortigate.server import Api, Request, serve
from halab.fortigate.store import Store
from halab.fortigate.tls import make_ca_and_server_cert
from tests.halab.fortigate.test_rules import policy, vip

TOKEN = "unit-test-token"


def call(
    api: Api, method: str, path: str, body: Any = None, *, vdom: str | None = "root",
    token: str | None = TOKEN,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    query = {"vdom": [vdom]} if vdom else {}
    data = json.dumps(body).encode() if body is not None else b""
    return api.handle(Request(method, path, query, token, data))


@pytest.fixture
def api() -> Api:
    return Api(Store(), TOKEN)


def test_a_request_without_the_token_is_401(api: Api) -> None:
    # The provider names 401 "Not Authorized" (sdk/sdkcore/forticlient.go fortiAPIErrorFormat).
    assert call(api, "GET", "/api/v2/cmdb/firewall/vip", token=None)[0] == 401
    assert call(api, "GET", "/api/v2/cmdb/firewall/vip", token="wrong")[0] == 401


def test_the_version_call_answers_version_at_the_top(api: Api) -> None:
    # GetDeviceVersion reads result["version"] from /api/v2/cmdb/system/global, without vdom.
    status, body = call(api, "GET", "/api/v2/cmdb/system/global", vdom=None)
    assert status == 200
    assert body["status"] == "success"
    assert body["version"] == "v7.2.8"
    status, body = call(api, "GET", "/api/v2/monitor/system/status")
    assert (status, body["results"]["model"]) == (200, "FGVM64")
    assert "test double" in body["results"]["emulator"]


def test_a_create_answers_the_mkey_the_provider_takes_as_the_id(api: Api) -> None:
    status, body = call(api, "POST", "/api/v2/cmdb/firewall/vip", vip(name="lab-vips"))
    assert (status, body["status"], body["http_status"], body["mkey"]) == (
        200, "success", 200, "lab-vips"
    )  # fmt: skip
    assert (body["vdom"], body["path"], body["name"]) == ("root", "firewall", "vip")
    assert body["revision"] != body["old_revision"]
    # A policy's mkey is a JSON number: the provider reads it with o["mkey"].(float64).
    status, body = call(api, "POST", "/api/v2/cmdb/firewall/policy", policy())
    assert status == 200
    assert body["mkey"] == 1000 and isinstance(body["mkey"], int)


def test_a_read_is_a_list_of_one_with_fortios_normal_form(api: Api) -> None:
    body = {"name": "src", "subnet": "198.51.100.0/24"}
    call(api, "POST", "/api/v2/cmdb/firewall/address", body)
    status, read = call(api, "GET", "/api/v2/cmdb/firewall/address/src")
    assert status == 200
    # sdkutils.go read: results[0] for a table entry.
    assert read["results"][0]["subnet"] == "198.51.100.0 255.255.255.0"


def test_a_name_with_a_slash_is_read_back_escaped(api: Api) -> None:
    # sdkfos.go escapes the mkey into the path (escapeURLString).
    call(api, "POST", "/api/v2/cmdb/firewall/address", {"name": "a/b", "subnet": "10.0.0.0/8"})
    status, _ = call(api, "GET", "/api/v2/cmdb/firewall/address/a%2Fb")
    assert status == 200


def test_errors_have_fortios_shape(api: Api) -> None:
    call(api, "POST", "/api/v2/cmdb/firewall/vip", vip(name="lab-vips"))
    call(api, "POST", "/api/v2/cmdb/firewall/policy", policy())
    status, body = call(api, "DELETE", "/api/v2/cmdb/firewall/vip/lab-vips")
    # issue #297: HTTP 500, status error, the code and the CLI's text.
    assert status == 500
    assert body["status"] == "error" and body["http_status"] == 500
    assert body["error"] == -23
    assert body["cli_error"].endswith("Command fail. Return code -23")
    status, body = call(api, "GET", "/api/v2/cmdb/firewall/vip/nope")
    # A 404 is "gone" to the provider (fortiAPIHttpStatus404Checking).
    assert (status, body["http_status"], body["error"]) == (404, 404, -3)


def test_refusals_are_marked_as_the_emulator_s_own(api: Api) -> None:
    status, body = call(api, "GET", "/api/v2/cmdb/firewall/vip", vdom="vdom2")
    assert status == 501
    assert "error" not in body
    assert body["cli_error"].startswith("fortigate-emulator refuses")
    assert call(api, "PATCH", "/api/v2/cmdb/firewall/vip/x")[0] == 501
    assert call(api, "GET", "/api/v2/cmdb/firewall")[0] == 501


def test_https_with_the_provider_s_token_parameter(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    with serve(Store(), TOKEN, cert=cert, key=key, ca=ca) as running:
        context = ssl.create_default_context(cafile=str(ca))
        # Python 3.13's default everywhere: the CA must pass strict verification on 3.11 too.
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        base = f"https://{running.host}/api/v2/cmdb/firewall/vip"
        request = urllib.request.Request(
            f"{base}?vdom=root&access_token={TOKEN}",
            data=json.dumps(vip(name="lab-vips")).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            assert answer.headers["X-Fortigate-Emulator"].endswith("not a FortiGate")
            assert json.load(answer)["mkey"] == "lab-vips"
        bearer = urllib.request.Request(base, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(bearer, context=context, timeout=10) as answer:
            assert [v["name"] for v in json.load(answer)["results"]] == ["lab-vips"]
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base, context=context, timeout=10)
        assert caught.value.code == 401
    # The token never lands in the record of requests.
    assert all(TOKEN not in path for _m, path, _s in running.requests)


def test_the_command_line_takes_listen_and_state() -> None:
    args = build_parser().parse_args(
        ["fortigate-emulator", "--listen", "127.0.0.1:9443", "--state", "s.json"]
    )
    assert args.listen == ("127.0.0.1", 9443)
    assert args.state == "s.json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fortigate-emulator", "--listen", "nope"])
