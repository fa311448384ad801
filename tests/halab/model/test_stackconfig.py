"""Which keys a stack file itself sets (``make up`` fills in only the others), and that every
reader refuses a key the project does not declare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from halab.model.errors import ConfigError
from halab.model.stackconfig import (
    from_pulumi_getter,
    read_stack,
    refuse_undeclared_keys,
    stack_file_keys,
    stack_spec,
)
from halab.plumbing.roots import PROJECT


def test_only_the_stack_files_own_keys_count() -> None:
    keys = stack_file_keys("local")
    assert {"edge", "hosts", "vrrpAdvertIntervalMs"} <= keys
    # Defaults of Pulumi.yaml (which `pulumi config --json` lists too) are not the stack's.
    assert not keys & {"libvirtUri", "domainType", "baseImage"}


def test_a_stack_without_a_file_sets_nothing(tmp_path: Path) -> None:
    assert stack_file_keys("nothing-here", tmp_path) == set()


def test_other_namespaces_are_not_the_labs(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  libvirt:uri: qemu:///system\n  ha-web-lab:edge: linux\n", encoding="utf-8"
    )
    assert stack_file_keys("x", tmp_path) == {"edge"}


# ---- no undeclared key is ever ignored -------------------------------------------------------

REPO = Path(__file__).resolve().parents[3]
TYPO = "ha-web-lab:edgeAllowedSource"


def _project(tmp_path: Path, stack_lines: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text(), encoding="utf-8")
    staging = (REPO / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    (tmp_path / "Pulumi.x.yaml").write_text(staging + stack_lines, encoding="utf-8")
    return tmp_path


def test_a_misspelt_key_in_a_stack_file_names_the_key_it_meant(tmp_path: Path) -> None:
    project = _project(tmp_path, f"  {TYPO}: [10.0.0.0/8]\n")
    with pytest.raises(ConfigError) as info:
        read_stack("x", project)
    assert info.value.key == "edgeAllowedSource"
    assert str(info.value) == (
        "ha-web-lab:edgeAllowedSource = ['10.0.0.0/8']: "
        "not a key of this project: did you mean edgeAllowedSources?"
    )


def test_a_key_like_no_other_gets_no_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_stack("x", _project(tmp_path, "  ha-web-lab:banana: 3\n"))
    assert "did you mean" not in str(info.value)
    assert "not a key of this project" in str(info.value) and "= 3" in str(info.value)


def test_an_undeclared_secret_is_named_but_never_shown(tmp_path: Path) -> None:
    secure = "  ha-web-lab:fortigateTokn:\n    secure: v1:c2VjcmV0\n"
    with pytest.raises(ConfigError) as info:
        read_stack("x", _project(tmp_path, secure))
    assert "did you mean fortigateToken?" in str(info.value)
    assert "[secret]" in str(info.value) and "v1:" not in str(info.value)


def test_declared_secrets_and_other_namespaces_are_taken(tmp_path: Path) -> None:
    lines = (
        "  ha-web-lab:sshPrivateKey:\n    secure: v1:c2VjcmV0\n"
        "  libvirt:uri: qemu:///system\n  fortios:hostname: 192.0.2.1\n  pulumi:tags: {a: b}\n"
    )
    cfg = read_stack("x", _project(tmp_path, lines))
    assert cfg.secrets_present == {"sshPrivateKey"}


@pytest.mark.parametrize("stack", sorted(p.name.split(".")[1] for p in REPO.glob("Pulumi.*.yaml")))
def test_every_stack_file_of_the_project_loads(stack: str) -> None:
    read_stack(stack).spec(offline=True)


def _pulumi_json(stack: str, **extra: dict[str, Any]) -> dict[str, Any]:
    """``pulumi config --json`` of a stack file: every value as the CLI lists it."""
    config: dict[str, Any] = {
        f"{PROJECT}:{key}": {"value": json.dumps(value), "objectValue": value, "secret": False}
        for key, value in read_stack(stack).values.items()
    }
    config["libvirt:uri"] = {"value": "qemu:///system", "secret": False}
    return {**config, **extra}


def test_pulumi_config_json_with_a_misspelt_key_is_refused() -> None:
    good = _pulumi_json("staging")
    assert stack_spec("staging", REPO, good).stack == "staging"
    typo = {"value": '["10.0.0.0/8"]', "objectValue": ["10.0.0.0/8"], "secret": False}
    with pytest.raises(ConfigError) as info:
        stack_spec("staging", REPO, {**good, TYPO: typo})
    assert info.value.key == "edgeAllowedSource"
    assert "did you mean edgeAllowedSources?" in str(info.value)
    # `pulumi config --json` without --show-secrets: a secret has no value to show.
    hidden = {"ha-web-lab:sshPrivateKy": {"secret": True}}
    with pytest.raises(ConfigError) as info:
        stack_spec("staging", REPO, {**good, **hidden})
    assert "[secret]" in str(info.value) and "did you mean sshPrivateKey?" in str(info.value)


def test_the_programs_getter_sees_every_key_the_engine_passed() -> None:
    plain = {"ha-web-lab:edge": "linux", "libvirt:uri": "qemu:///system"}
    passed = {**plain, "ha-web-lab:vrrpPremept": "true"}
    with pytest.raises(ConfigError) as info:
        from_pulumi_getter("x", lambda _key: None, lambda _key: False, stack_config=passed)
    assert str(info.value) == (
        "ha-web-lab:vrrpPremept = 'true': not a key of this project: did you mean vrrpPreempt?"
    )
    refuse_undeclared_keys(plain)
