"""Roles as data: every definition is whole, and the lists read from it agree with each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from halab.machine import image
from halab.model.roles import COMMON_FILES, ROLES, Role, all_packages, lab_binaries, packages
from halab.model.spec import load_spec
from halab.model.stackconfig import read_stack
from halab.plumbing import hostdeps
from halab.render.hosts import TEMPLATE_DIR, render_all

REPO = Path(__file__).resolve().parents[3]


def test_every_role_is_defined_and_its_templates_exist() -> None:
    assert set(ROLES) == set(Role)
    for role, definition in ROLES.items():
        assert definition.role is role
        assert set(definition.derived_offsets) <= set(definition.legs), role
        for f in (*COMMON_FILES, *definition.files):
            assert f.secret == (f.template is None), f.path
            if f.template is not None:
                assert (TEMPLATE_DIR / f.template).is_file(), f.template


def test_a_host_gets_exactly_its_roles_files_and_packages() -> None:
    spec = load_spec(
        dict(read_stack("staging").values), stack="staging", secrets_present=frozenset()
    )
    for name, rendered in render_all(spec).items():
        definition = ROLES[spec.plan.host(name).role]
        expected = [f.path for f in (*COMMON_FILES, *definition.files)]
        assert [f.path for f in rendered.files] == expected, name
        assert f"- {packages(definition.role)[0]}\n" in rendered.user_data, name


def test_the_package_list_is_one_list() -> None:
    """The image build takes every role's packages from here (and imports without
    site-packages: it runs before the virtualenv exists), and this machine has each one, since
    the namespace lab runs every role's daemons."""
    subprocess.run(
        [sys.executable, "-S", "-c", "import halab.machine.image"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert image.image_packages() == (*image.SYSTEM_PACKAGES, *all_packages())
    installed = set(hostdeps.selected(hostdeps.read_list(), "tests"))
    assert set(all_packages()) <= installed
    for binary in lab_binaries():
        assert hostdeps.package_of(binary) in installed, binary
