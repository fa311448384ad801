"""Failover drills: a registry of drills, one report, against any lab that speaks the protocol.

Owns what every drill is made of (:mod:`~halab.drills.core`: its run, its result, the watcher
of the VIP), the drills (:mod:`~halab.drills.web`, :mod:`~halab.drills.lb`,
:mod:`~halab.drills.network`, :mod:`~halab.drills.load`), every drill by name and the one
dispatch (:mod:`~halab.drills.registry`), the baseline (:mod:`~halab.drills.baseline`), figures
from the samples and the report of each drill (:mod:`~halab.drills.analysis`,
:mod:`~halab.drills.report`) and the benchmark's sweep of variants (:mod:`~halab.drills.sweep`).

A lab reaches the drills only through :class:`halab.target.protocol.DrillTarget`; nothing here
knows namespaces, VMs or Pulumi.

May import: halab.plumbing, halab.model, halab.target.
"""
