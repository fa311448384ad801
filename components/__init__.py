"""Pulumi components of the lab.

``HaWebLab`` renders every host once and builds the zones, the storage, one ``HostGroup`` of VMs
per role, the FortiGate-VM and the FortiGate edge when there are, and the readiness gates. No
component builds a provider: ``__main__.py`` makes each once and hands it down.

Owns the lab's Pulumi resources; where they sit and what they are named is the state of every
existing stack, so they stay where Pulumi's conventions put them.

May import: halab.plumbing, halab.model, halab.render.
"""

from components.edge import FortiGateEdge, FortiGateEdgeArgs
from components.fortigate_vm import FortiGateVm, FortiGateVmArgs
from components.ha_web_lab import HaWebLab, HaWebLabArgs
from components.host_group import HostGroup, HostGroupArgs
from components.network import ZoneNetwork, ZoneNetworkArgs
from components.storage import LabStorage, LabStorageArgs
from components.tls import LabCertificate, LabCertificateArgs
from components.vm import LabVm, LabVmArgs

__all__ = [
    "FortiGateEdge",
    "FortiGateEdgeArgs",
    "FortiGateVm",
    "FortiGateVmArgs",
    "HaWebLab",
    "HaWebLabArgs",
    "HostGroup",
    "HostGroupArgs",
    "LabCertificate",
    "LabCertificateArgs",
    "LabStorage",
    "LabStorageArgs",
    "LabVm",
    "LabVmArgs",
    "ZoneNetwork",
    "ZoneNetworkArgs",
]
