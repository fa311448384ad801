"""A deployed lab of VMs, as a drill target and as a neighbour on its hypervisor.

Owns :class:`~halab.vmlab.lab.VmLab` (a deployed lab reached over SSH from the project's
libvirtd namespace; a :class:`halab.target.protocol.DrillTarget`), what its VMs print
(:mod:`~halab.vmlab.parse`) and cost (:mod:`~halab.vmlab.usage`), the clean-up of a lab's
leftovers on the hypervisor (:mod:`~halab.vmlab.reclaim`) and the check that a stack's networks
do not clash with the hypervisor's others (:mod:`~halab.vmlab.neighbours`).

It runs on the machine's libvirtd (:mod:`halab.machine.libvirtd`: its namespace's name), and
imports neither the drills nor Pulumi.

May import: halab.plumbing, halab.model, halab.target, halab.machine.
"""
