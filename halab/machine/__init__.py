"""The machine: what a lab of VMs runs on, and the pristine roots that prove a newcomer's path.

Owns the Pulumi engine and the environment of every Pulumi run (:mod:`~halab.machine.engine`),
the lab's image and its Debian mirror (:mod:`~halab.machine.image`,
:mod:`~halab.machine.debian`), the project's own libvirtd (:mod:`~halab.machine.libvirtd`, its
config templates in ``libvirt/``), the KVM probe (:mod:`~halab.machine.kvm`) and ``make
fresh-test``/``make fresh-boot`` (:mod:`~halab.machine.fresh`, the run and its command line;
:mod:`~halab.machine.freshroot`, the pristine root both share with the image build;
:mod:`~halab.machine.freshboot`, that root booted with systemd).

``python3 -m halab.machine.engine`` and ``python3 -m halab.machine.fresh`` run on Debian's
python3 before the virtualenv exists: those, ``freshroot``, ``freshboot`` and ``debian`` are
standard library only.

May import: halab.plumbing, halab.model.
"""
