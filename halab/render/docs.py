"""docs/configuration.md, written from ``Pulumi.yaml`` (``python -m halab docs [--check]``).

``Pulumi.yaml`` is the one home of the config keys: their types, defaults and descriptions. The
page groups them by the spec section that validates them (``halab/model/sections.py``), in the order
``Pulumi.yaml`` declares them, so neither a key nor a default can be documented in two places
that drift apart; ``tests/test_docs.py`` fails when the page is not what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from halab.model.sections import Section
from halab.model.spec import SECRET_KEYS, LabSpec
from halab.plumbing.roots import PROJECT

PAGE = Path("docs") / "configuration.md"
#: The spec's own keys (topology) and the secrets, which no section holds.
TOPOLOGY = "spec"
SECRETS = "secrets"
#: Fields of the spec that are not config keys (the stack's name, what the CLI says is set).
INTERNAL = frozenset({"stack", "secretsPresent"})

HEADER = """\
<!-- Written by `python -m halab docs` from Pulumi.yaml: change Pulumi.yaml, then run it
     (`make docs`); tests/test_docs.py fails when this page and Pulumi.yaml disagree. -->

# Configuration reference

Every key is declared in [`Pulumi.yaml`](../Pulumi.yaml) with its type, description and
default; a stack sets its own values in `Pulumi.<stack>.yaml` (or `scripts/pulumi.sh STACK
config set KEY VALUE`, `--secret` for the secrets). `halab/model/spec.py` validates them all
before anything is created, and each error names the key and the value:
`ha-web-lab:vip = '10.9.9.9': is outside 10.0.1.0/24`. The keys are flat, as Pulumi wants them;
in the spec each belongs to one section with its own checks (`halab/model/sections.py`), and
this page lists them section by section; zones, hosts and the VIP, and the checks that span
sections, are the spec's own. Addresses left out are derived as
[the address plan](architecture.md#address-plan)
says; what the VRRP, BFD and HAProxy knobs cost and buy is in [failover](failover.md).
"""

GROUP_TITLES = {
    TOPOLOGY: "The topology (`spec`)",
    SECRETS: "Secrets",
}
GROUP_TEXT = {
    TOPOLOGY: "Zones, hosts and the VIP: the spec's own keys, checked against each other.",
    SECRETS: (
        "Pulumi secrets end to end (`pulumi config set --secret KEY ...`): secret config, "
        "secret resource inputs, secret outputs; the spec never holds their values, only "
        "whether they are set."
    ),
}


def key_groups(model: type[BaseModel] = LabSpec, prefix: str = TOPOLOGY) -> dict[str, str]:
    """Each config key of the spec with the section that holds it (``spec.vrrp``, ...)."""
    out: dict[str, str] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            out.update(key_groups(annotation, f"{prefix}.{field.alias or name}"))
        elif (field.alias or name) not in INTERNAL:
            out[field.alias or name] = prefix
    return out


def _section_models(model: type[BaseModel] = LabSpec, prefix: str = TOPOLOGY) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            path = f"{prefix}.{field.alias or name}"
            out[path] = annotation
            out.update(_section_models(annotation, path))
    return out


def _cell(text: str) -> str:
    # A pipe ends a table cell even inside backticks, so every one is escaped; outside code
    # spans, `<stack>` would be read as an HTML tag and vanish.
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _structured(default: Any) -> bool:
    return isinstance(default, dict) or (
        isinstance(default, list) and any(isinstance(v, dict) for v in default)
    )


def _default(key: str, default: Any) -> str:
    if _structured(default):
        return f"[below](#default-{key.lower()})"
    if default == "":
        return "empty"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, list):
        return f"`{yaml.safe_dump(default, default_flow_style=True).strip()}`"
    return f"`{default}`"


def _type(decl: dict[str, Any]) -> str:
    kind = decl.get("type")
    if kind is None:
        # Pulumi types no objects: the description says which shape, before its colon.
        return str(decl["description"]).split(":", 1)[0]
    if kind == "array":
        return f"array of {decl['items']['type']}"
    return str(kind)


def configuration_page(project_dir: Path) -> str:
    """The whole page for the ``Pulumi.yaml`` in ``project_dir``."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    declared: dict[str, dict[str, Any]] = {
        key.removeprefix(f"{PROJECT}:"): decl for key, decl in project["config"].items()
    }
    groups = key_groups()
    models = _section_models()
    order = [*dict.fromkeys(groups.values()), SECRETS]
    placed: dict[str, list[str]] = {group: [] for group in order}
    for key in declared:
        group = SECRETS if key in SECRET_KEYS else groups.get(key)
        if group is None:
            raise ValueError(f"Pulumi.yaml declares {key}, which no spec section reads")
        placed[group].append(key)

    lines = [HEADER]
    structured: list[str] = []
    for group in order:
        if not placed[group]:
            continue
        title = GROUP_TITLES.get(group, f"`{group}`")
        model = models.get(group)
        text = GROUP_TEXT.get(group) or (model.__doc__ or "").strip().splitlines()[0]
        lines += [
            f"## {title}",
            "",
            text,
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for key in placed[group]:
            decl = declared[key]
            default = decl.get("default")
            if _structured(default):
                structured.append(key)
            row = (f"`{key}`", _type(decl), _default(key, default), _cell(decl["description"]))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if structured:
        lines += ["## Defaults of the structured keys", ""]
        for key in structured:
            dumped = yaml.safe_dump({key: declared[key]["default"]}, sort_keys=False)
            lines += [f"### default: {key}", "", "```yaml", dumped.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def add_docs_command(sub: Any) -> None:
    """``python -m halab docs``: write the page, or with ``--check`` only compare."""
    command = sub.add_parser(
        "docs",
        help="write docs/configuration.md from Pulumi.yaml (--check: fail when it differs)",
        description="Write docs/configuration.md from the config keys Pulumi.yaml declares.",
    )
    command.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the page differs"
    )
    command.set_defaults(func=_docs)


def _docs(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir)
    page = project_dir / PAGE
    wanted = configuration_page(project_dir)
    if args.check:
        if page.exists() and page.read_text() == wanted:
            return 0
        print(f"{PAGE} is not what Pulumi.yaml says: run `python -m halab docs`", file=sys.stderr)
        return 1
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(wanted)
    print(page)
    return 0
