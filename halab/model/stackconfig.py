"""Read a stack's config the way the Pulumi CLI does, without the CLI.

``Pulumi.yaml`` declares every key with its default; ``Pulumi.<stack>.yaml`` overrides them.
Secret values (``secure: v1:...``) cannot be decrypted here: they become :data:`SECRET_PLACEHOLDER`
and are reported in ``secrets_present`` so validation still knows they are set. Every reader
refuses a ``ha-web-lab:`` key that ``Pulumi.yaml`` does not declare
(:func:`refuse_undeclared_keys`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from halab.model.errors import ConfigError
from halab.model.sections import config_fields
from halab.model.spec import SECRET_KEYS, LabSpec, load_spec
from halab.plumbing.roots import PROJECT

#: Every config key the spec reads (each section's too), with its field.
_FIELDS = {
    key: f for key, f in config_fields(LabSpec).items() if key not in ("stack", "secretsPresent")
}
#: Every key the project declares: Pulumi.yaml's config section (tests/test_project_file.py keeps
#: the two the same).
DECLARED_KEYS = frozenset(_FIELDS) | frozenset(SECRET_KEYS)
SECRET_PLACEHOLDER = "<secret: set in the stack, not decrypted by the render command>"  # noqa: S105
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackConfig:
    """A stack's merged config: plain values by key, and which secret keys are set."""

    stack: str
    values: dict[str, Any]
    secrets_present: frozenset[str]

    def spec(self, *, offline: bool = False) -> LabSpec:
        """Validate into a :class:`LabSpec`.

        ``offline``: for rendering and the local lab, which never talk to a FortiGate: a token
        that is not in the stack file (yet) is not an error there; its place is a placeholder.
        """
        present = self.secrets_present | ({"fortigateToken"} if offline else set())
        return load_spec(self.values, stack=self.stack, secrets_present=frozenset(present))


def project_defaults(project_dir: Path = REPO_ROOT) -> dict[str, Any]:
    """Every key declared in ``Pulumi.yaml`` with its default (keys without one are omitted)."""
    project = _read_yaml(project_dir / "Pulumi.yaml")
    declared = project.get("config") or {}
    return {
        key.removeprefix(f"{PROJECT}:"): decl["default"]
        for key, decl in declared.items()
        if isinstance(decl, dict) and "default" in decl
    }


def stack_file_keys(stack: str, project_dir: Path = REPO_ROOT) -> set[str]:
    """The lab's keys that ``Pulumi.<stack>.yaml`` itself sets (none when there is no file).

    ``pulumi config --json`` also lists the project's defaults; what a user chose is only here.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    raw = (_read_yaml(path).get("config") or {}) if path.is_file() else {}
    return {
        key for namespace, _, key in (str(k).partition(":") for k in raw) if namespace == PROJECT
    }


def read_stack(stack: str, project_dir: Path = REPO_ROOT) -> StackConfig:
    """Merge ``Pulumi.yaml`` defaults with ``Pulumi.<stack>.yaml``."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            "stack", stack, f"no {path.name} in {project_dir} (stacks: {', '.join(known)})"
        )
    raw = (_read_yaml(path).get("config")) or {}
    refuse_undeclared_keys(raw, is_secret=lambda key: _is_secure(raw.get(f"{PROJECT}:{key}")))
    values = project_defaults(project_dir)
    secrets: set[str] = set()
    for full_key, value in raw.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != PROJECT:
            continue  # provider settings such as libvirt:uri are not the lab's
        if _is_secure(value):
            secrets.add(key)
            values[key] = SECRET_PLACEHOLDER
        else:
            values[key] = _typed(key, value)
    return StackConfig(stack=stack, values=values, secrets_present=frozenset(secrets))


def refuse_undeclared_keys(
    config: Mapping[str, Any], is_secret: Callable[[str], bool] = lambda _key: False
) -> None:
    """Raise :class:`ConfigError` for the first ``ha-web-lab:`` key the project does not declare,
    with the declared key closest to it.

    Every reader calls this: a misspelt key is otherwise never read, and its default is deployed
    without a word. ``config`` holds every key a stack sets by its full name (``ha-web-lab:edge``,
    ``libvirt:uri``) with its value; keys of other namespaces belong to the providers and to
    Pulumi, which check their own. ``is_secret`` (of a key without the prefix) hides the value.
    """
    for full_key, value in config.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != PROJECT or key in DECLARED_KEYS:
            continue
        raise ConfigError(key, "[secret]" if is_secret(key) else value, _undeclared(key))


def _undeclared(key: str) -> str:
    # Case-blind, so edgeallowedsources and EdgeAllowedSources find their key as well.
    by_lower = {declared.lower(): declared for declared in DECLARED_KEYS}
    close = difflib.get_close_matches(key.lower(), by_lower, n=1)
    if close:
        return f"not a key of this project: did you mean {by_lower[close[0]]}?"
    return "not a key of this project (Pulumi.yaml's config section lists every key)"


def _is_secure(value: Any) -> bool:
    """A value as ``pulumi config set --secret`` writes it into a stack file."""
    return isinstance(value, dict) and set(value) == {"secure"}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "...", f"not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), type(data).__name__, "expected a YAML mapping")
    return data


def from_pulumi_getter(
    stack: str,
    get: Callable[[str], str | None],
    is_secret: Callable[[str], bool] = lambda _key: True,
    *,
    stack_config: Mapping[str, Any],
) -> StackConfig:
    """Collect the lab's keys through a Pulumi-style getter (``pulumi.Config().get``).

    Pulumi hands every value over as a string (objects and numbers as JSON), with the project's
    defaults already applied. Secrets are only checked for presence here; their values travel
    as Pulumi secret Outputs and never enter the spec. ``stack_config``: every key the stack
    sets, of every namespace, by its full name (see :func:`refuse_undeclared_keys`); the getter
    alone asks only for declared keys, so it would never see a misspelt one.
    """
    refuse_undeclared_keys(stack_config, is_secret=is_secret)
    values: dict[str, Any] = {}
    for key, field in _FIELDS.items():
        raw = get(key)
        if raw is None:
            continue
        values[key] = raw if field.annotation is str else _json_or_text(raw)
    present = frozenset(k for k in SECRET_KEYS if get(k))
    for key in sorted(present):
        if not is_secret(key):
            raise ConfigError(
                key,
                "(plain text)",
                f"must be a secret: run `pulumi config rm {key}` and "
                f"`pulumi config set --secret {key} ...`",
            )
    return StackConfig(stack=stack, values=values, secrets_present=present)


def _typed(key: str, value: Any) -> Any:
    # `pulumi config set` writes every value as a string ("3", "false"); the CLI hands them to
    # the program the same way, so decode them as from_pulumi_getter does.
    field = _FIELDS.get(key)
    if isinstance(value, str) and field is not None and field.annotation is not str:
        return _json_or_text(value)
    return value


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def stack_spec(
    stack: str,
    project_dir: Path = REPO_ROOT,
    pulumi_config: Mapping[str, Any] | None = None,
    *,
    offline: bool = True,
) -> LabSpec:
    """The one way from a stack to its spec: ``python -m halab``, the labs and the checks.

    Without ``pulumi_config``, the stack's files (:func:`read_stack`). With it, the output of
    ``pulumi config --json`` (``{"proj:key": {"value", "secret"}}``) over the defaults in
    ``project_dir``'s ``Pulumi.yaml``: ``pulumi config set`` writes every value as a string
    (``"3"``), which the YAML reader would not coerce, and the CLI gives the program what that
    output lists. ``offline`` as in :meth:`StackConfig.spec`. Pulumi's program reads its config
    through the engine's getter instead (:func:`from_pulumi_getter`).
    """
    if pulumi_config is None:
        config = read_stack(stack, project_dir)
    else:
        config = _from_pulumi_json(stack, pulumi_config, project_defaults(project_dir))
    return config.spec(offline=offline)


def _from_pulumi_json(
    stack: str, config: Mapping[str, Any], defaults: Mapping[str, Any]
) -> StackConfig:
    """A stack's config from ``pulumi config --json``, through the program's own reader."""

    def entry(key: str) -> dict[str, Any] | None:
        found = config.get(f"{PROJECT}:{key}")
        return found if isinstance(found, dict) else None

    def get(key: str) -> str | None:
        found = entry(key)
        if found is not None:
            if found.get("secret") and "value" not in found:
                return "[secret]"  # present; its value never enters the spec
            value = found.get("objectValue", found.get("value"))
            return value if isinstance(value, str) else json.dumps(value)
        if key in defaults:
            value = defaults[key]
            return value if isinstance(value, str) else json.dumps(value)
        return None

    def is_secret(key: str) -> bool:
        found = entry(key)
        return bool(found and found.get("secret"))

    shown = {
        key: found.get("objectValue", found.get("value")) if isinstance(found, dict) else found
        for key, found in config.items()
    }
    return from_pulumi_getter(stack, get, is_secret=is_secret, stack_config=shown)
