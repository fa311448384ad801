"""ha-web-lab: the whole HA web lab from one stack config.

Read and validate the spec, create the providers once, build the lab, export outputs.
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
import pulumi_libvirt as libvirt
import pulumiverse_fortios as fortios
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from components.ha_web_lab import HaWebLab, HaWebLabArgs
from components.readiness import SshAccess, agent_answers
from halab.model.errors import ConfigError
from halab.model.sections import EdgeKind
from halab.model.spec import fortigate_vm_token_problem
from halab.model.stackconfig import from_pulumi_getter
from halab.render.outputs import stack_outputs


def passed_config() -> dict[str, Any]:
    """Every config key the engine passed to this program, of every namespace, with its value.

    The language host hands the stack's config over as ``PULUMI_CONFIG``, which the SDK loads
    into its config map before the program starts; the Automation API and Pulumi's mocks set
    that map directly. Both are read, so no key is missed however it came.
    """
    return {**get_config_env(), **CONFIG.get()}


config = pulumi.Config()
try:
    spec = from_pulumi_getter(
        pulumi.get_stack(),
        config.get,
        is_secret=lambda key: is_config_secret(config.full_key(key)),
        stack_config=passed_config(),
    ).spec()
    agent = os.environ.get("SSH_AUTH_SOCK") or None
    problem = spec.deploy_problems(agent_socket=agent, agent_answers=agent_answers(agent))
    if problem is not None:
        raise problem
    if spec.edge.kind is EdgeKind.FORTIGATE_VM:
        # The one check of a secret's value, before anything exists: the engine hands the
        # program its config decrypted; the message shows only the token's length.
        token_problem = fortigate_vm_token_problem(
            str(passed_config().get(config.full_key("fortigateToken"), ""))
        )
        if token_problem is not None:
            raise token_problem
except ConfigError as exc:
    # One line the user can act on, before any resource exists; no traceback.
    raise pulumi.RunError(exc.line()) from None


def secret(key: str) -> pulumi.Output[str] | None:
    """A secret config value as a secret Output, or None when the stack does not set it."""
    return config.get_secret(key) if key in spec.secrets_present else None


def fortigate_provider(hostname: pulumi.Input[str]) -> fortios.Provider:
    """The FortiOS provider (made once): at ``fortigateHost``, or for ``edge: fortigate-vm``
    at the FortiGate-VM's WAN address once it answers (the lab calls this then)."""
    return fortios.Provider(
        "fortigate",
        hostname=hostname,
        token=config.require_secret("fortigateToken"),
        insecure=spec.edge.fortigate.insecure,
        # The CA that signed the FortiGate's certificate, so verification can stay on.
        cabundlefile=spec.edge.fortigate.ca_bundle_file or None,
        cabundlecontent=spec.edge.fortigate.ca_bundle or None,
        vdom=spec.edge.fortigate.vdom,
    )


fortigate = None
if spec.edge.kind is EdgeKind.FORTIGATE:
    fortigate = fortigate_provider(spec.fortigate_api_host)

HaWebLab(
    "lab",
    HaWebLabArgs(
        spec=spec,
        libvirt_provider=libvirt.Provider("libvirt", uri=spec.vm.libvirt_uri),
        fortigate_provider=fortigate,
        fortigate_vm_provider=(
            fortigate_provider if spec.edge.kind is EdgeKind.FORTIGATE_VM else None
        ),
        fortigate_token=secret("fortigateToken"),
        ssh=(
            SshAccess(
                user=spec.vm.admin_user, private_key=secret("sshPrivateKey"), agent_socket=agent
            )
            if spec.readiness.enabled
            else None
        ),
        tls_certificate=secret("tlsCertificate"),
        tls_private_key=secret("tlsPrivateKey"),
    ),
)

for key, value in stack_outputs(spec).items():
    pulumi.export(key, value)
