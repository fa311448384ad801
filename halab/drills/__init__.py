"""Failover drills: one protocol, two targets, a registry of drills, one probe, one report.

- :mod:`halab.drills.target`: the protocol a lab implements (:class:`DrillTarget`): the
  namespace lab (:mod:`halab.lab`) and a deployed lab of VMs (:mod:`halab.e2e.vmlab`);
- :mod:`halab.drills.probe`: the client; :mod:`halab.drills.probe_process`: that client as a
  process, started, awaited and stopped the same way on both targets (each says only how it
  launches a process there);
- :mod:`halab.drills.core`: what every drill is made of (its run, its result, the watcher of the
  VIP); :mod:`halab.drills.web`, :mod:`~halab.drills.lb`, :mod:`~halab.drills.network` and
  :mod:`~halab.drills.load`: the drills;
- :mod:`halab.drills.registry`: every drill by name, and the one dispatch;
- :mod:`halab.drills.analysis` and :mod:`halab.drills.report`: figures from the samples, and
  the report of each drill (JSON, text, a picture).

Nothing here knows namespaces, VMs or Pulumi.
"""
