"""The Debian mirror of a suite, from apt sources in both formats."""

from __future__ import annotations

from pathlib import Path

from halab.debian import deb822_uris, mirror_for, one_line_uris

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
