"""Which Debian release this machine runs, and which Debian mirror its apt uses for a suite, read
from its sources: one-line ``.list`` files and deb822 ``.sources`` files. The image build and
``make fresh-test`` take their mirror from here, so they use the mirror this machine is known to
reach, for the release they build whatever release the machine itself runs.

Standard library only: ``make fresh-test`` runs before the project's virtualenv exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

APT_DIR = Path("/etc/apt")
OS_RELEASE = Path("/etc/os-release")
#: The Debian releases the project builds and tests, by codename, with their version number.
RELEASES = {"bookworm": 12, "trixie": 13}
#: The release of a machine that is neither (or says nothing).
DEFAULT_RELEASE = "bookworm"


def host_release(os_release: Path = OS_RELEASE) -> str:
    """This machine's release (``VERSION_CODENAME``) when it is one of :data:`RELEASES`, else
    :data:`DEFAULT_RELEASE`."""
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_RELEASE
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip().strip('"') in RELEASES:
            return value.strip().strip('"')
    return DEFAULT_RELEASE


def one_line_entries(text: str) -> Iterator[tuple[str, str]]:
    """(URI, suite) of each ``deb [options] URI SUITE COMPONENTS...`` line."""
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
        if len(rest) >= 2:
            yield rest[0], rest[1]


def deb822_entries(text: str) -> Iterator[tuple[str, str]]:
    """(first URI, suite) for each suite of each enabled ``Types: deb`` stanza."""
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
        if uris:
            for suite in fields.get("suites", "").split():
                yield uris[0], suite


def one_line_uris(text: str, suite: str) -> Iterator[str]:
    """The URIs of the one-line sources for ``suite``."""
    return (uri for uri, listed in one_line_entries(text) if listed == suite)


def deb822_uris(text: str, suite: str) -> Iterator[str]:
    """The first URI of each enabled deb822 stanza that lists ``suite``."""
    return (uri for uri, listed in deb822_entries(text) if listed == suite)


def source_entries(apt_dir: Path = APT_DIR) -> list[tuple[str, str]]:
    """(URI, suite) of every source apt reads, ``.list`` files before ``.sources`` files."""
    entries: list[tuple[str, str]] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            entries += one_line_entries(path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        entries += deb822_entries(path.read_text(encoding="utf-8", errors="replace"))
    return entries


def suite_kind(suite: str) -> str:
    """What a suite is apart from its release: ``""`` for the release itself, ``-security``,
    ``-updates``..."""
    _release, dash, kind = suite.partition("-")
    return f"{dash}{kind}"


def mirror_for(suite: str, apt_dir: Path = APT_DIR) -> str | None:
    """The mirror apt's sources name for ``suite``; else the mirror they name for the same kind
    of suite of another release (a bookworm machine's ``bookworm-security`` mirror serves
    ``trixie-security`` too); None when they name neither."""
    entries = source_entries(apt_dir)
    for uri, listed in entries:
        if listed == suite:
            return uri
    if suite.partition("-")[0] not in RELEASES:
        return None
    for uri, listed in entries:
        if suite_kind(listed) == suite_kind(suite) and listed.partition("-")[0] in RELEASES:
            return uri
    return None
