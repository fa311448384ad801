"""The lab's storage pool and the base image every VM's disk overlays."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_libvirt as libvirt

from halab.model.sections import VmSpec


@dataclass(kw_only=True)
class LabStorageArgs:
    """What the storage needs: the lab's name, the pool's folder, and the VM section (base
    image, optional kernel and initrd)."""

    lab_name: str
    pool_path: str
    vm: VmSpec


class LabStorage(pulumi.ComponentResource):
    """A dir pool of the lab's own, the base image in it, and the kernel/initrd for direct boot.

    A pool per stack means `pulumi destroy` removes every volume and the folder, and two
    stacks never share (or delete) each other's disks.
    """

    pool: libvirt.Pool
    base_image: libvirt.Volume
    kernel: libvirt.Volume | None
    initrd: libvirt.Volume | None

    def __init__(
        self, name: str, args: LabStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:LabStorage", name, None, opts)
        lab, vm = args.lab_name, args.vm
        child = pulumi.ResourceOptions(parent=self)
        self.pool = libvirt.Pool(
            f"{name}-pool",
            name=lab,
            type="dir",
            # `target.path`, not the deprecated top-level `path` (a warning on every preview).
            target=libvirt.PoolTargetArgs(path=args.pool_path),
            opts=child,
        )
        self.base_image = libvirt.Volume(
            f"{name}-base-image",
            name=f"{lab}-base.qcow2",
            pool=self.pool.name,
            source=vm.base_image,
            format="qcow2",
            opts=child,
        )
        self.kernel = self._boot_file(name, "kernel", vm.kernel, lab)
        self.initrd = self._boot_file(name, "initrd", vm.initrd, lab)
        self.register_outputs({"pool": self.pool.name, "base_image_id": self.base_image.id})

    def _boot_file(self, name: str, kind: str, source: str, lab: str) -> libvirt.Volume | None:
        if not source:
            return None
        return libvirt.Volume(
            f"{name}-{kind}",
            name=f"{lab}-{kind}",
            pool=self.pool.name,
            source=source,
            format="raw",
            opts=pulumi.ResourceOptions(parent=self),
        )
