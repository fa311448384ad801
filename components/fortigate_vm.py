"""The FortiGate-VM of ``edge: fortigate-vm``: made from the user's image, booted from a config
drive, waited for until its API answers. :class:`components.edge.FortiGateEdge` then configures
it through the FortiOS provider, as it does the user's own FortiGate with ``edge: fortigate``.

The config drive is not the lab's cloud-init seed: the libvirt provider's CloudInitDisk writes
only a NoCloud ISO (label cidata, files user-data, meta-data, network-config), and FortiGate-VM
reads an OpenStack config drive (label config-2, openstack/latest/...: see
:mod:`halab.render.hosts`). So the drive is built here, on the machine running Pulumi, by the
program the provider makes its ISOs with (mkisofs; ``make up`` already requires it), and uploaded
into the lab's pool like the base image. Nothing of this has booted a FortiGate here: no image was
available (docs/fortigate-vm.md).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_libvirt as libvirt

from components.storage import LabStorage
from components.vm import host_cpu, leg_nics, no_listening_display, serial_console
from halab.model.roles import ZoneName
from halab.model.spec import LabSpec
from halab.plumbing.roots import cache_root
from halab.render.hosts import (
    ConfigDrive,
    config_drive_env,
    config_drive_script,
    fortigate_config_drive,
    fortigate_ready_script,
)


@dataclass(kw_only=True)
class FortiGateVmArgs:
    """What the FortiGate-VM needs: the spec (its plan has the VM), the lab's pool and zone
    networks, and the API token, which only Pulumi holds."""

    spec: LabSpec
    storage: LabStorage
    network_ids: Mapping[ZoneName, pulumi.Output[str]]
    token: pulumi.Output[str]


class FortiGateVm(pulumi.ComponentResource):
    """The user's image as a base volume, a disk over it, the config drive, the domain with one
    virtio NIC per leg (pinned MACs), and the wait for its API."""

    image: libvirt.Volume
    drive_file: command.local.Command
    drive: libvirt.Volume
    root_disk: libvirt.Volume
    domain: libvirt.Domain
    ready: command.local.Command
    #: Changes whenever the config drive does (a new drive is a new disk and a new machine).
    digest: pulumi.Output[str]

    def __init__(
        self, name: str, args: FortiGateVmArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:FortiGateVm", name, None, opts)
        spec, storage = args.spec, args.storage
        host = spec.plan.fortigate
        if host is None:
            raise ValueError(f"edge {spec.edge.kind.value!r} has no FortiGate-VM")
        fortigate = spec.edge.fortigate
        child = pulumi.ResourceOptions(parent=self)
        vm_name = f"{spec.lab_name}-{host.name}"
        licence = (
            Path(fortigate.license_file).expanduser().read_text(encoding="utf-8")
            if fortigate.license_file
            else None
        )
        # Secret: the bootstrap config holds the token (and the drive the licence).
        drive: pulumi.Output[ConfigDrive] = pulumi.Output.secret(
            args.token.apply(lambda token: fortigate_config_drive(spec, token, licence))
        )
        # A digest reveals nothing of the token, and names and triggers must be plain values.
        self.digest = pulumi.Output.unsecret(drive.apply(lambda d: d.digest))
        out = self.digest.apply(
            lambda digest: str(cache_root() / "fortigate" / f"{vm_name}-config-drive-{digest}.iso")
        )

        self.image = libvirt.Volume(
            f"{name}-image",
            name=f"{vm_name}-image.qcow2",
            pool=storage.pool.name,
            source=str(Path(fortigate.image).expanduser()),
            format="qcow2",
            opts=child,
        )
        # The ISO file holds the token: made private (umask 077), removed with the resource.
        self.drive_file = command.local.Command(
            f"{name}-config-drive-file",
            create=pulumi.Output.unsecret(
                pulumi.Output.all(drive, out).apply(lambda a: config_drive_script(a[0], a[1]))
            ),
            delete=out.apply(lambda path: f"rm -f {shlex.quote(path)}"),
            # Secret, as the drive is.
            environment=drive.apply(config_drive_env),
            interpreter=["/bin/bash", "-c"],
            triggers=[self.digest],
            opts=child,
        )
        self.drive = libvirt.Volume(
            f"{name}-config-drive",
            name=self.digest.apply(lambda d: f"{vm_name}-config-drive-{d}.iso"),
            pool=storage.pool.name,
            source=out,
            format="raw",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.drive_file]),
        )
        # FortiOS reads the drive at its first boot only: a new drive gets a fresh disk.
        self.root_disk = libvirt.Volume(
            f"{name}-root",
            name=self.digest.apply(lambda d: f"{vm_name}-root-{d}.qcow2"),
            pool=storage.pool.name,
            base_volume_id=self.image.id,
            format="qcow2",
            opts=child,
        )
        self.domain = libvirt.Domain(
            f"{name}-domain",
            name=vm_name,
            type=spec.vm.domain_type.value,
            vcpu=host.vcpus,
            memory=host.memory_mib,
            cpu=host_cpu(spec.vm.domain_type),
            disks=[
                libvirt.DomainDiskArgs(volume_id=self.root_disk.id),
                # By its file in the pool, not its volume id: the provider makes a disk whose
                # file ends in .iso an IDE CD-ROM (libvirt/domain_def.go, setDisks), as
                # Fortinet's own script attaches the drive; a volume would be a virtio disk.
                libvirt.DomainDiskArgs(
                    file=pulumi.Output.concat(spec.plan.pool_path, "/", self.drive.name)
                ),
            ],
            # The provider's NICs are virtio, which FortiGate-VM on KVM supports; in leg order,
            # so port1 is the WAN (Public) and port2 the DMZ.
            network_interfaces=leg_nics(host, args.network_ids),
            consoles=[serial_console()],
            graphics=no_listening_display(),
            autostart=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.drive],
                # A new drive or NIC is a new machine (see components.vm.LabVm); its name is
                # fixed, so the old one goes first.
                replace_on_changes=["disks", "networkInterfaces"],
                delete_before_replace=True,
            ),
        )
        environment: dict[str, pulumi.Input[str]] = {"HWL_FORTIGATE_TOKEN": args.token}
        if fortigate.ca_bundle and not fortigate.insecure:
            environment["HWL_FORTIGATE_CA"] = fortigate.ca_bundle
        # Not a readiness gate to switch off: the FortiOS provider cannot be called before the
        # FortiGate answers, so this wait always runs (bounded by readinessTimeoutS).
        self.ready = command.local.Command(
            f"{name}-ready",
            create=fortigate_ready_script(spec),
            interpreter=["/bin/bash", "-c"],
            environment=environment,
            # A new machine must answer again.
            triggers=[self.digest, self.domain.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.domain]),
        )
        self.register_outputs(
            {
                "domain_id": self.domain.id,
                "name": vm_name,
                "api_host": spec.fortigate_api_host,
                "addresses": {leg.zone.value: str(leg.address) for leg in host.legs},
            }
        )
