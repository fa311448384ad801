"""ha-web-lab: the pure-Python heart of the lab, in layers that follow the data flow.

Bottom up; each package's ``__init__.py`` says what it owns and what it may import, and
tests/test_layers.py holds every import to that (a layer imports only layers below it, and
wings on one floor never import each other):

1. :mod:`halab.plumbing`: processes, namespaces, the project's roots, locks, host packages,
   ``virsh``, TLS;
2. :mod:`halab.model`: a stack's config, validated and typed, and everything derived from it;
3. wings: :mod:`halab.render` (spec -> every host's files, validated), :mod:`halab.target`
   (the drill protocol and the probe), :mod:`halab.machine` (the engine, the image, the
   project's libvirtd, KVM, the fresh roots) and :mod:`halab.fortigate` (a FortiOS emulator);
4. the labs: Pulumi's ``components`` (beside halab), :mod:`halab.nslab` (namespaces) and
   :mod:`halab.vmlab` (a deployed lab of VMs);
5. :mod:`halab.drills`: the drills, against any lab that speaks the protocol;
6. :mod:`halab.bench` (the drills and the benchmark on the namespace lab) and
   :mod:`halab.e2e` (the end-to-end scenario on VMs);
7. ``python -m halab``: :mod:`halab.cli` and :mod:`halab.up`.

Nothing here imports Pulumi but the e2e run, so the render command, the namespace lab and the
tests use exactly what ``pulumi up`` deploys. This file imports nothing: ``python3 -m
halab.X`` runs it first, also before the virtualenv exists.
"""
