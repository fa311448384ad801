"""The local lab: every host of a stack as a Linux network namespace, running the real daemons.

Layout:

- :mod:`halab.lab.topology` turns a spec into namespaces, bridges and veth legs (pyroute2);
- :mod:`halab.lab.recipes` says how each role's daemons run in a namespace (from the roles'
  data, :mod:`halab.model.roles`);
- :mod:`halab.lab.lab` starts the daemons with the rendered files and records everything it
  starts in a state file (:mod:`halab.lab.state`), so ``down``, a failure or Ctrl-C removes all
  of it; :mod:`halab.plumbing.procs` reaches each process by PID and start time, never by name;
- :mod:`halab.lab.throughput` measures its requests/s (``wrk``, else the loop of
  :mod:`halab.lab.loadgen`); :mod:`halab.lab.bench` is the failover benchmark;
- the drills (:mod:`halab.drills`) run against it through the
  :class:`halab.target.protocol.DrillTarget` protocol, which
  :class:`halab.lab.lab.NamespaceLab` implements;
- :mod:`halab.lab.cli` adds ``lab up|status|drill|down|bench`` to ``python -m halab``.

Nothing here imports Pulumi.
"""
