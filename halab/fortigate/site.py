"""One emulator where a lab runs it: the address and port it listens on, which Linux interface
each FortiOS port stands for, and the folder of its state, CA, token and log.

The namespace lab's edge and the e2e's stand-in on the lab's bridges both run one; this is what
they share: how the FortiOS provider names it, where the emulator keeps its files (the layout
``python -m halab fortigate-emulator`` uses by default) and its command line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

#: The port of a FortiGate's HTTPS admin access, when ``fortigateHost`` names none.
FORTIGATE_API_PORT = 443
#: The emulator's subcommand of ``python -m halab``.
EMULATOR_COMMAND = "fortigate-emulator"
#: Its CA, certificate and token, in this folder beside its state unless told otherwise.
TLS_DIR = "fortigate-tls"


def listen_address(host: str) -> tuple[IPv4Address, int]:
    """``fortigateHost`` as the address and port an emulator listens on (FortiOS's own HTTPS
    port when it names none). ValueError when it names no IPv4 address."""
    text, _, port = host.partition(":")
    return IPv4Address(text), int(port) if port else FORTIGATE_API_PORT


@dataclass(frozen=True)
class EmulatorSite:
    """Where one emulator listens and keeps its files, and what its ports stand for."""

    listen: IPv4Address
    port: int
    #: (FortiOS port, Linux interface of the emulator's namespace)
    interfaces: tuple[tuple[str, str], ...]
    folder: Path

    @property
    def hostname(self) -> str:
        """What the provider's ``hostname`` gets (FortiOS's own port needs no ``:443``)."""
        ip = str(self.listen)
        return ip if self.port == FORTIGATE_API_PORT else f"{ip}:{self.port}"

    @property
    def state_file(self) -> Path:
        """The emulator's configuration, kept across its restarts (a drill may kill the edge)."""
        return self.folder / "fortigate.json"

    @property
    def ca_file(self) -> Path:
        """The throwaway CA that signs the emulator's certificate (the provider's CA bundle)."""
        return self.folder / TLS_DIR / "ca.pem"

    @property
    def token_file(self) -> Path:
        """The API token the emulator makes at its first start (``fortigateToken``)."""
        return self.folder / TLS_DIR / "token"

    @property
    def log_file(self) -> Path:
        """The emulator's output."""
        return self.folder / "fortigate-emulator.log"

    def argv(self) -> list[str]:
        """The emulator's command line (run inside the namespace it forwards for)."""
        ports = [f"--interface={name}={ifname}" for name, ifname in self.interfaces]
        return [
            sys.executable, "-m", "halab", EMULATOR_COMMAND,
            "--listen", f"{self.listen}:{self.port}", "--state", str(self.state_file),
            "--interface=any", *ports, "--apply-nft",
        ]  # fmt: skip
