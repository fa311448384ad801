"""The Debian mirror of a suite, from apt sources in both formats."""

from __future__ import annotations

from pathlib import Path

from halab.machine.debian import (
    DEFAULT_RELEASE,
    deb822_uris,
    host_release,
    mirror_for,
    one_line_uris,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian-security
Suites: bookworm-security

Types: deb
URIs: http://off.example/debian-security
Suites: bookworm-security
Enabled: no

Types: deb deb-src
URIs: http://security.example/debian-security
 http://second.example/debian-security
Suites:
 bookworm-security
"""


def test_deb822_takes_enabled_binary_stanzas_and_continuation_lines() -> None:
    assert list(deb822_uris(DEB822, "bookworm")) == ["http://deb.debian.org/debian"]
    assert list(deb822_uris(DEB822, "bookworm-updates")) == ["http://deb.debian.org/debian"]
    # deb-src only and Enabled: no are skipped; a folded Suites: field still counts.
    assert list(deb822_uris(DEB822, "bookworm-security")) == [
        "http://security.example/debian-security"
    ]
    assert list(deb822_uris(DEB822, "trixie")) == []


def test_one_line_sources_with_and_without_options() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://opts.example/debian bookworm main\n"
        "deb http://plain.example/debian bookworm-security main  # a comment\n"
    )
    assert list(one_line_uris(text, "bookworm")) == ["http://opts.example/debian"]
    assert list(one_line_uris(text, "bookworm-security")) == ["http://plain.example/debian"]


def test_mirror_for_reads_list_files_before_sources_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822, encoding="utf-8")
    assert mirror_for("bookworm", tmp_path) == "http://deb.debian.org/debian"
    (tmp_path / "sources.list").write_text("deb http://list.example/debian bookworm main\n")
    assert mirror_for("bookworm", tmp_path) == "http://list.example/debian"
    assert mirror_for("sid", tmp_path) is None


def test_another_release_takes_the_mirror_of_the_same_kind_of_suite(tmp_path: Path) -> None:
    # A bookworm machine's sources name no trixie: its mirrors serve trixie all the same.
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822, encoding="utf-8")
    assert mirror_for("trixie", tmp_path) == "http://deb.debian.org/debian"
    assert mirror_for("trixie-updates", tmp_path) == "http://deb.debian.org/debian"
    assert mirror_for("trixie-security", tmp_path) == "http://security.example/debian-security"
    # And a trixie machine's serve bookworm.
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        DEB822.replace("bookworm", "trixie"), encoding="utf-8"
    )
    assert mirror_for("bookworm-security", tmp_path) == "http://security.example/debian-security"


def test_the_host_release_is_read_from_os_release(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\n')
    assert host_release(os_release) == "trixie"
    os_release.write_text("VERSION_CODENAME=noble\n")
    assert host_release(os_release) == DEFAULT_RELEASE
    assert host_release(tmp_path / "missing") == DEFAULT_RELEASE
