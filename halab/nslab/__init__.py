"""The namespace lab: every host of a stack as a Linux network namespace, running the real daemons.

Owns:

- :mod:`~halab.nslab.topology`: a spec turned into namespaces, bridges and veth legs (pyroute2);
- :mod:`~halab.nslab.recipes`: how each role's daemons run in a namespace (from the roles'
  data, :mod:`halab.model.roles`), each log through :mod:`~halab.nslab.devlog`;
- :mod:`~halab.nslab.lab`: the daemons started with the rendered files, everything started
  recorded in a state file (:mod:`~halab.nslab.state`), so ``down``, a failure or Ctrl-C removes
  all of it; :class:`~halab.nslab.lab.NamespaceLab` is a drill target
  (:class:`halab.target.protocol.DrillTarget`);
- :mod:`~halab.nslab.throughput`: its requests/s (``wrk``, else the loop of
  :mod:`~halab.nslab.loadgen`);
- :mod:`~halab.nslab.cli`: ``lab up|status|down`` of ``python -m halab`` (the drills and the
  benchmark on it are :mod:`halab.bench`'s).

Nothing here imports Pulumi or the drills.

May import: halab.plumbing, halab.model, halab.render, halab.target, halab.fortigate (where the
emulator it runs on a FortiGate stack's edge keeps its files: :mod:`halab.fortigate.site`).
"""
