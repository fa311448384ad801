"""A drill target: what a lab offers the drills, and the probe it starts near the client.

Owns the protocol a lab implements for the drills (:mod:`~halab.target.protocol`:
:class:`~halab.target.protocol.DrillTarget`, and :class:`~halab.target.protocol.SpecDrillTarget`,
what every target reads off its spec), the HTTP probe client (:mod:`~halab.target.probe`, run as
``python -m halab.target.probe`` inside a lab) and that client as a process, started, awaited
and stopped the same way on every target (:mod:`~halab.target.probe_process`). Both labs
implement the protocol and the drills speak only it, so neither lab imports the drills.

May import: halab.plumbing, halab.model.
"""
