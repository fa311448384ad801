"""The web nodes: one VM per host with role web, as many as the config lists."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.readiness import SshAccess
from components.storage import LabStorage
from components.vm import LabVm, LabVmArgs
from halab.render import render_host
from halab.spec import LabSpec, Role, ZoneName


@dataclass
class WebTierArgs:
    """What the web tier needs."""

    spec: LabSpec
    storage: LabStorage
    network_ids: dict[ZoneName, pulumi.Output[str]]
    #: SSH access for the readiness gates; None when they are off.
    ssh: SshAccess | None = None


class WebTier(pulumi.ComponentResource):
    """nginx + FastAPI on uvicorn, one VM per web host."""

    vms: dict[str, LabVm]

    def __init__(
        self, name: str, args: WebTierArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:WebTier", name, None, opts)
        spec = args.spec
        self.vms = {}
        for host in spec.hosts_with_role(Role.WEB):
            # Web seeds hold no secret: rendered right away, not inside an apply.
            seed = pulumi.Output.from_input(render_host(spec, host))
            self.vms[host.name] = LabVm(
                f"{name}-{host.name}",
                LabVmArgs(spec, host, seed, args.storage, args.network_ids, args.ssh),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"hosts": list(self.vms)})
