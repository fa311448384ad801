"""ha-web-lab: the pure-Python heart of the lab, in the order the data flows.

- ``halab.model.spec`` and its sections (``halab.model.sections``): the one source of truth; it
validates a
  stack's config and computes every address, MAC, interface name, VRRP priority and firewall
  rule;
- ``halab.model.roles``: what each kind of host is (legs, packages, files, daemons, checks);
- ``halab.render.hosts``: spec and roles -> every host's files;
- the namespace lab (``halab.nslab``) and a deployed lab of VMs (``halab.e2e``), two targets of
  the drills (``halab.drills``);
- around them: ``make up``/``make down`` (``halab.up``), the Pulumi engine and the environment
  of every Pulumi run (``halab.machine.engine``), the project's libvirtd
  (``halab.machine.libvirtd``) and image (``halab.machine.image``, its Debian mirror from
  ``halab.machine.debian``), ``make fresh-test`` (``halab.machine.fresh``).

Nothing here imports Pulumi but the e2e run, so the render command, the namespace lab and the
tests use exactly what ``pulumi up`` deploys.
"""
