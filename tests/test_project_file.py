"""Pulumi.yaml and the spec agree: every key declared, typed where Pulumi can, same defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from halab.model.sections import config_fields
from halab.model.spec import SECRET_KEYS, LabSpec, load_spec
from halab.model.stackconfig import project_defaults

REPO = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
INTERNAL = {"stack", "secretsPresent"}


def _spec_keys() -> dict[str, Any]:
    return {key: f for key, f in config_fields(LabSpec).items() if key not in INTERNAL}


def test_runtime_uses_the_pip_virtualenv() -> None:
    assert PROJECT["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": "venv"},
    }


def test_every_spec_key_and_secret_is_declared_with_a_description() -> None:
    declared = PROJECT["config"]
    assert set(declared) == set(_spec_keys()) | set(SECRET_KEYS)
    for key, decl in declared.items():
        assert decl.get("description"), key
        assert "default" in decl, key
        # Pulumi types only strings, integers, booleans and arrays; objects say so in words.
        if "type" not in decl:
            assert decl["description"].startswith(("object", "array of objects")), key


def test_declared_defaults_are_the_spec_defaults() -> None:
    defaults = project_defaults(REPO)
    for alias, field in _spec_keys().items():
        if field.is_required():
            continue
        declared = defaults[alias]
        expected = field.get_default(call_default_factory=True)
        if isinstance(expected, tuple):
            expected = [str(v) if not isinstance(v, int) else v for v in expected]
        elif hasattr(expected, "value"):
            expected = expected.value
        elif expected is None:
            expected = ""
        assert declared == expected, (
            f"{alias}: Pulumi.yaml says {declared!r}, the spec {expected!r}"
        )


def test_defaults_alone_make_a_valid_lab() -> None:
    # A new stack with no config at all is the dev plan behind the Linux edge.
    spec = load_spec(project_defaults(REPO), stack="new")
    assert spec.edge.kind.value == "linux"
    assert [h.name for h in spec.plan.hosts] == ["lb-1", "lb-2", "web-1", "web-2", "edge"]
