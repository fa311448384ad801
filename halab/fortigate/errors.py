"""FortiOS's error answers, and the emulator's own refusal where no source says what FortiOS does.

FortiOS answers a CMDB mistake with HTTP 500, ``"status": "error"``, a negative ``error`` code and
the CLI's text in ``cli_error`` (the provider prints that text under "Cli response:":
terraform-provider-fortios 1.20.0 sdk/sdkcore/forticlient.go, fortiAPIErrorFormat). The codes
and texts used here are the ones public reports show a FortiGate returning; each constant names
its report.
"""

from __future__ import annotations

from dataclasses import dataclass

#: "The entry is used by other 1 entries / Command fail. Return code -23" on deleting an address
#: group a policy still names: terraform-provider-fortios#297 (FortiOS 7.2.5, HTTP 500).
ENTRY_IN_USE = -23
#: "object already exists (mkey='vpn2')" then "API error -5 raised" on POSTing an existing name:
#: FortiOS's httpsd debug log in terraform-provider-fortios#244 (FortiOS 7.0, HTTP 500).
ENTRY_EXISTS = -5
#: "node_check_object fail! for name port2032 / value parse error before 'port2032' / Command
#: fail. Return code -651" for a policy naming an interface that does not exist:
#: terraform-provider-fortios#193 (HTTP 500).
INVALID_VALUE = -651
#: "Object not found": Ansible fortinet.fortios plugins/module_utils/fortios/fortios.py
#: (fortios_error_codes); a read of a missing entry is HTTP 404, which the provider takes as
#: "gone" (sdk/sdkcore/sdkutils.go read -> fortiAPIHttpStatus404Checking).
NOT_FOUND = -3

#: The emulator's own answer where no public source says what FortiOS does: not a FortiOS code.
#: 501 reaches the user as "Unknow Error (501)" plus the cli_error text, so it cannot pass for a
#: FortiOS answer (fortiAPIErrorFormat maps only 400-500 to FortiOS's meanings).
UNPROVEN_HTTP_STATUS = 501


@dataclass
class FortiOSError(Exception):
    """A refused request: the HTTP status, FortiOS's error code (None for the emulator's own
    refusals) and the CLI's text, as FortiOS returns them."""

    http_status: int
    code: int | None
    cli_error: str

    def __str__(self) -> str:
        return f"{self.http_status} {self.code}: {self.cli_error}"


def command_fail(code: int, *lines: str) -> FortiOSError:
    """FortiOS's HTTP 500 with the CLI's lines and its closing "Command fail. Return code N"."""
    return FortiOSError(500, code, "\n".join((*lines, f"Command fail. Return code {code}")))


def invalid_value(value: object, why: str) -> FortiOSError:
    """A value FortiOS's CLI parser rejects (terraform-provider-fortios#193's shape), with the
    emulator's reason."""
    return command_fail(INVALID_VALUE, why, f"value parse error before '{value}'")


def unproven(what: str) -> FortiOSError:
    """Refuse what no public source settles, rather than guess FortiOS's answer."""
    return FortiOSError(
        UNPROVEN_HTTP_STATUS,
        None,
        f"fortigate-emulator refuses: {what}; no public source says what FortiOS does "
        "(docs/fortigate-emulator.md, Unproven)",
    )
