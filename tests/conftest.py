"""Shared test fixtures: Pulumi mocks that record the whole resource graph.

The mocks are set for every test (autouse) so a component can never reach a real engine; each
test sets its own stack config and builds the program or a component inside
``@pulumi.runtime.test``.
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from halab.model.spec import SECRET_KEYS
from halab.model.stackconfig import read_stack
from halab.plumbing.roots import PROJECT

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FAKE_PEM = (
    "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
    "-----BEGIN PRIVATE KEY-----\nMIIEfake\n-----END PRIVATE KEY-----"
)
TEST_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0ZXN0LWtleS1mb3ItdGhlLWxhYi10ZXN0cy0xMjM0 test@lab"
)
TEST_TOKEN = "test-fortigate-token-0123456789"
TEST_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n"


@dataclass
class Registered:
    """One resource as the engine would see it."""

    urn: str
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str]
    provider: str
    custom: bool
    #: Top-level input names whose value is (or contains) a Pulumi secret.
    secret_inputs: frozenset[str] = frozenset()
    ignore_changes: tuple[str, ...] = ()


@dataclass
class Graph:
    """Every resource registered during a test, in order."""

    resources: list[Registered] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registered]:
        """Resources of one Pulumi type token."""
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        """The resource with this logical name."""
        (match,) = [r for r in self.resources if r.name == name]
        return match

    def by_urn(self, urn: str) -> Registered:
        """The resource with this URN."""
        (match,) = [r for r in self.resources if r.urn == urn]
        return match


class LabMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs, plus what the real providers compute (ids, command output)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "command:local:Command":
            outputs["stdout"] = FAKE_PEM
        if args.typ.startswith("libvirt:"):
            # libvirt's ids are UUIDs or volume keys; the name is unique enough for a graph.
            return f"{args.name}-id", outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each registration's parent and dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks, graph: Graph) -> None:
        super().__init__(mocks)
        self.graph = graph

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            raw = pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True)
            secret_inputs = frozenset(k for k, v in raw.items() if _has_secret(v))
            inputs = {k: _unwrap(v) for k, v in raw.items()}
            self.graph.resources.append(
                Registered(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    inputs=inputs,
                    dependencies=list(request.dependencies),
                    provider=request.provider,
                    custom=request.custom,
                    secret_inputs=secret_inputs,
                    ignore_changes=tuple(request.ignoreChanges),
                )
            )
        return response


_SECRET_SIG = pulumi.runtime.rpc._special_sig_key
_SECRET_VALUE = pulumi.runtime.rpc._special_secret_sig


def _is_secret_marker(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SECRET_SIG) == _SECRET_VALUE


def _has_secret(value: Any) -> bool:
    if _is_secret_marker(value):
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _unwrap(value: Any) -> Any:
    if _is_secret_marker(value):
        return _unwrap(value["value"])
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


@pytest.fixture(autouse=True)
def graph() -> Iterator[Graph]:
    """Fresh mocks (and an empty graph) for every test."""
    recorded = Graph()
    mocks = LabMocks()
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack="dev",
        preview=False,
        monitor=RecordingMonitor(mocks, recorded),
    )
    yield recorded
    pulumi.runtime.set_all_config({})


def stack_config(stack: str, **overrides: Any) -> tuple[dict[str, str], list[str]]:
    """A stack's config as the CLI hands it to the program: strings, JSON for the rest."""
    cfg = read_stack(stack)
    values: dict[str, Any] = dict(cfg.values)
    secrets: dict[str, str] = {"sshPrivateKey": TEST_PRIVATE_KEY}
    if stack == "dev" or values.get("edge") == "fortigate":
        secrets["fortigateToken"] = TEST_TOKEN
    values.setdefault("sshPublicKeys", [])
    values["sshPublicKeys"] = [TEST_SSH_KEY]
    for key, value in overrides.items():
        if key in SECRET_KEYS:
            secrets[key] = value
        else:
            values[key] = value
    flat = {
        f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v)
        for k, v in {**values, **secrets}.items()
    }
    return flat, [f"{PROJECT}:{k}" for k in secrets]


def set_stack(stack: str, **overrides: Any) -> None:
    """Make ``stack`` (with overrides) the config the program reads."""
    flat, secret_keys = stack_config(stack, **overrides)
    pulumi.runtime.set_all_config(flat, secret_keys)
    pulumi.runtime.settings._set_stack(stack)


def run_program() -> dict[str, Any]:
    """Run ``__main__.py`` as the engine would; returns its module globals."""
    return runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")


def build(build_fn: Callable[[], Any]) -> None:
    """Run ``build_fn`` inside ``@pulumi.runtime.test`` and wait for every registration.

    Assertions go after this returns: inside the test function resources are still being
    registered asynchronously.
    """

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def _inside_pulumi() -> None:
        build_fn()

    _inside_pulumi()


@pytest.fixture
def program(graph: Graph) -> Callable[..., Graph]:
    """Set a stack's config, run the program under the mocks, return the resource graph."""

    def _run(stack: str, **overrides: Any) -> Graph:
        set_stack(stack, **overrides)
        build(run_program)
        return graph

    return _run
