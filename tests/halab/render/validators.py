"""Test helpers around :mod:`halab.render.validate`: render a spec to a tree, and fail loudly.

A failing check raises ``AssertionError`` whose message is the validator's own output, so pytest
shows exactly what HAProxy, nginx, cloud-init, ... said about the rendered file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from halab.model.spec import LabSpec
from halab.model.stackconfig import REPO_ROOT
from halab.render.hosts import RenderedHost, render_all, write_tree
from halab.render.validate import CHECKS, Check, HostTree, Problem, run_check, run_checks

#: A real OpenSSH public key line (its blob names its type), for configs that need one.
TEST_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0ZXN0LWtleS1mb3ItdGhlLWxhYi10ZXN0cy0xMjM0 test@lab"
)


def example_stacks(project_dir: Path = REPO_ROOT) -> list[str]:
    """Every ``Pulumi.<stack>.yaml`` of the project, so a new example stack is validated too."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def rendered_files(host: RenderedHost) -> dict[str, str]:
    """A rendered host's config files, ``real path -> content`` (what a :class:`Check` selects)."""
    return {f.path: f.content for f in host.files}


def applicable_checks(host: RenderedHost) -> list[Check]:
    """The checks that have something to read on this host (e.g. haproxy only on an lb)."""
    files = rendered_files(host)
    return [c for c in CHECKS if c.applies(files)]


def write_hosts(rendered: dict[str, RenderedHost], out: Path) -> dict[str, HostTree]:
    """Write a rendered lab as ``python -m halab render`` does; one :class:`HostTree` a host."""
    if out.exists():
        shutil.rmtree(out)
    write_tree(rendered, out)
    return {name: HostTree(out / name) for name in rendered}


def render_to_tree(spec: LabSpec, out: Path) -> dict[str, HostTree]:
    """Render every host of ``spec`` into ``out``."""
    return write_hosts(render_all(spec), out)


def problems_text(problems: Iterable[Problem]) -> str:
    """Every problem with the validator's full output, for an assertion message."""
    return "\n\n".join(str(p) for p in problems)


def assert_no_problems(problems: list[Problem]) -> None:
    """Fail with the validators' own words if any check complained."""
    if problems:
        raise AssertionError(
            f"{len(problems)} rendered file(s) rejected by their validator:\n\n"
            + problems_text(problems)
        )


def assert_valid(check: Check, tree: HostTree) -> None:
    """Run one check on one host and fail with the validator's output if it complains."""
    assert_no_problems(run_check(check, tree))


def validate_all(trees: Iterable[HostTree]) -> list[Problem]:
    """Every applicable check on every given host, in parallel."""
    tasks = [(c, t) for t in trees for c in CHECKS if c.applies(t.files())]
    return [p for problems in run_checks(tasks) for p in problems]
