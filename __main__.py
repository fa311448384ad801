"""ha-web-lab: the whole HA web lab from one stack config.

Read and validate the spec, create the providers once, build the components, export outputs.
"""

from __future__ import annotations

import os

import pulumi
import pulumi_libvirt as libvirt
import pulumiverse_fortios as fortios
from pulumi.runtime.config import is_config_secret

from components import (
    FortiGateEdge,
    FortiGateEdgeArgs,
    LabCertificate,
    LabCertificateArgs,
    LabStorage,
    LabStorageArgs,
    LinuxEdge,
    LinuxEdgeArgs,
    LoadBalancerPair,
    LoadBalancerPairArgs,
    WebTier,
    WebTierArgs,
    ZoneNetwork,
    ZoneNetworkArgs,
)
from components.readiness import SshAccess, TierGate, TierGateArgs
from halab.errors import ConfigError
from halab.outputs import stack_outputs
from halab.spec import EdgeKind, ZoneName
from halab.stackconfig import from_pulumi_getter

config = pulumi.Config()
try:
    spec = from_pulumi_getter(
        pulumi.get_stack(),
        config.get,
        is_secret=lambda key: is_config_secret(config.full_key(key)),
    ).spec()
except ConfigError as exc:
    # One line the user can act on, before any resource exists; no traceback.
    raise pulumi.RunError(exc.line()) from None


def _secret(key: str) -> pulumi.Output[str] | None:
    return config.get_secret(key) if key in spec.secrets_present else None


def _ssh_access() -> SshAccess | None:
    agent = os.environ.get("SSH_AUTH_SOCK")
    problem = spec.deploy_problems(ssh_agent=bool(agent))
    if problem is not None:
        raise pulumi.RunError(problem.line())
    if not spec.readiness:
        return None
    return SshAccess(spec.admin_user, private_key=_secret("sshPrivateKey"), agent_socket=agent)


ssh = _ssh_access()
libvirt_provider = libvirt.Provider("libvirt", uri=spec.libvirt_uri)
on_libvirt = pulumi.ResourceOptions(provider=libvirt_provider)

networks = {
    zone: ZoneNetwork(f"zone-{zone.value}", ZoneNetworkArgs(spec, zone), on_libvirt)
    for zone in ZoneName
}
network_ids = {zone: net.network_id for zone, net in networks.items()}
storage = LabStorage("storage", LabStorageArgs(spec), on_libvirt)

web = WebTier("web", WebTierArgs(spec, storage, network_ids, ssh), on_libvirt)
certificate = LabCertificate(
    "tls",
    LabCertificateArgs(
        spec,
        certificate=_secret("tlsCertificate"),
        private_key=_secret("tlsPrivateKey"),
    ),
)
lbs = LoadBalancerPair(
    "lb",
    LoadBalancerPairArgs(spec, storage, network_ids, certificate.pem, depends_on=[web], ssh=ssh),
    on_libvirt,
)

edge_vms = []
if spec.edge is EdgeKind.FORTIGATE:
    fortigate_provider = fortios.Provider(
        "fortigate",
        hostname=spec.fortigate_host,
        token=config.require_secret("fortigateToken"),
        insecure=spec.fortigate_insecure,
        vdom=spec.fortigate_vdom,
    )
    FortiGateEdge(
        "edge", FortiGateEdgeArgs(spec), pulumi.ResourceOptions(provider=fortigate_provider)
    )
elif spec.edge is EdgeKind.LINUX:
    edge_vms = [LinuxEdge("edge", LinuxEdgeArgs(spec, storage, network_ids, ssh), on_libvirt).vm]

if ssh is not None:
    vms = [*web.vms.values(), *lbs.vms.values(), *edge_vms]
    TierGate(
        "gate",
        TierGateArgs(
            spec,
            ssh,
            host_gates=[vm.ready for vm in vms if vm.ready is not None],
            fingerprint=pulumi.Output.all(*[vm.seed_disk.name for vm in vms]).apply(
                lambda names: ",".join(sorted(names))
            ),
        ),
    )

for key, value in stack_outputs(spec).items():
    pulumi.export(key, value)
