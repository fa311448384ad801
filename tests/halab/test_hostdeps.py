"""The host's Debian packages: which set each command installs (halab/hostdeps.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from halab import hostdeps, image, libvirtd
from halab.hostdeps import HostDepsError
from halab.roles import all_packages, lab_binaries

REPO = Path(__file__).resolve().parents[2]


# --- the list ---------------------------------------------------------------------------------


def test_sections_parse_and_a_choice_takes_what_it_needs() -> None:
    text = "# comment\n[host]\npython3  # why\n\n[tests]\nnginx\n"
    sections = hostdeps.parse_list(text)
    assert sections == {"host": ("python3",), "tests": ("nginx",)}
    assert hostdeps.selected(sections, "host") == ("python3",)
    assert hostdeps.selected(sections, "tests") == ("python3", "nginx")
    with pytest.raises(HostDepsError):
        hostdeps.selected(sections, "everything")


@pytest.mark.parametrize(
    "text",
    [
        "nginx\n[host]\n",  # before any section
        "[host]\n[other]\nnginx\n",  # unknown section
        "[host]\n[host]\n",  # repeated section
        "[host]\nnginx\n[tests]\nnginx\n",  # in two sections
        "[host]\nnginx haproxy\n",  # two on a line
    ],
)
def test_a_malformed_list_is_refused(text: str) -> None:
    with pytest.raises(HostDepsError):
        hostdeps.parse_list(text)


def test_make_up_gets_no_daemon_the_lab_runs_only_in_vms_or_namespaces() -> None:
    sections = hostdeps.read_list()
    host, tests = set(sections["host"]), set(sections["tests"])
    # The roles' packages (nginx, haproxy, keepalived, ...) go into the image and run in the
    # namespace lab: the tests need them here, make up never does.
    roles = set(all_packages())
    assert roles <= host | tests
    for package in ("nginx", "haproxy", "keepalived", "cloud-init", "netplan.io"):
        assert package in tests, package
        assert package not in host, package
    for package in lab_binaries().values():
        assert package in host | tests, package


def test_make_up_gets_every_tool_it_runs() -> None:
    host = set(hostdeps.read_list()["host"])
    needed = {*libvirtd.COMMANDS.values(), *image.COMMANDS.values()} - {"dpkg"}
    assert needed <= host, needed - host
    # make up's own checks and commands: mkisofs, ssh-keygen, the certificate, the tier gate,
    # the picture, the venv.
    assert {"genisoimage", "openssh-client", "openssl", "curl", "graphviz", "python3-venv"} <= host


# --- what dpkg says ---------------------------------------------------------------------------


def test_installed_means_installed_not_removed_with_config_kept() -> None:
    text = "nginx\tinstalled\nhaproxy\tconfig-files\nkeepalived\tnot-installed\ncurl\tinstalled\n"
    assert hostdeps.parse_installed(text) == {"nginx", "curl"}


def test_the_module_runs_on_debians_python_alone() -> None:
    """scripts/bootstrap.sh runs it before the virtualenv exists (no site-packages)."""
    done = subprocess.run(
        [sys.executable, "-S", "-m", "halab.hostdeps", "list", "host"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.split() == list(hostdeps.read_list()["host"])
