"""Which Debian mirror this machine's apt uses for a suite, read from its sources: one-line
``.list`` files and deb822 ``.sources`` files. The image build and ``make fresh-test`` take their
mirror from here, so they use the mirror this machine is known to reach.

Standard library only: ``make fresh-test`` runs before the project's virtualenv exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

APT_DIR = Path("/etc/apt")


def one_line_uris(text: str, suite: str) -> Iterator[str]:
    """The URIs of ``deb [options] URI SUITE COMPONENTS...`` lines for ``suite``."""
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields or fields[0] != "deb":
            continue
        rest = fields[1:]
        if rest and rest[0].startswith("["):
            # Options: "[arch=amd64 signed-by=...]", one field or several.
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2 and rest[1] == suite:
            yield rest[0]


def deb822_uris(text: str, suite: str) -> Iterator[str]:
    """The first URI of each enabled ``Types: deb`` stanza that lists ``suite``."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # a continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        uris = fields.get("uris", "").split()
        if uris and suite in fields.get("suites", "").split():
            yield uris[0]


def mirror_for(suite: str, apt_dir: Path = APT_DIR) -> str | None:
    """The first mirror apt's sources name for ``suite``; None when none does."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            for uri in one_line_uris(path.read_text(encoding="utf-8", errors="replace"), suite):
                return uri
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for uri in deb822_uris(path.read_text(encoding="utf-8", errors="replace"), suite):
            return uri
    return None
