"""Pulumi components of the lab. Each consumes the spec and the renderer; none builds a provider."""

from components.edge import FortiGateEdge, FortiGateEdgeArgs, LinuxEdge, LinuxEdgeArgs
from components.lab import HaWebLab, HaWebLabArgs
from components.lb_pair import LoadBalancerPair, LoadBalancerPairArgs
from components.network import ZoneNetwork, ZoneNetworkArgs
from components.storage import LabStorage, LabStorageArgs
from components.tls import LabCertificate, LabCertificateArgs
from components.vm import LabVm, LabVmArgs
from components.web_tier import WebTier, WebTierArgs

__all__ = [
    "FortiGateEdge",
    "FortiGateEdgeArgs",
    "HaWebLab",
    "HaWebLabArgs",
    "LabCertificate",
    "LabCertificateArgs",
    "LabStorage",
    "LabStorageArgs",
    "LabVm",
    "LabVmArgs",
    "LinuxEdge",
    "LinuxEdgeArgs",
    "LoadBalancerPair",
    "LoadBalancerPairArgs",
    "WebTier",
    "WebTierArgs",
    "ZoneNetwork",
    "ZoneNetworkArgs",
]
