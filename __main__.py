"""ha-web-lab: the whole HA web lab from one stack config.

Read and validate the spec, create the providers once, build the components, export outputs.
"""

from __future__ import annotations

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


libvirt_provider = libvirt.Provider("libvirt", uri=spec.libvirt_uri)
on_libvirt = pulumi.ResourceOptions(provider=libvirt_provider)

networks = {
    zone: ZoneNetwork(f"zone-{zone.value}", ZoneNetworkArgs(spec, zone), on_libvirt)
    for zone in ZoneName
}
network_ids = {zone: net.network_id for zone, net in networks.items()}
storage = LabStorage("storage", LabStorageArgs(spec), on_libvirt)

web = WebTier("web", WebTierArgs(spec, storage, network_ids), on_libvirt)
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
    LoadBalancerPairArgs(spec, storage, network_ids, certificate.pem, depends_on=[web]),
    on_libvirt,
)

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
    LinuxEdge("edge", LinuxEdgeArgs(spec, storage, network_ids), on_libvirt)

for key, value in stack_outputs(spec).items():
    pulumi.export(key, value)
