"""Rendering: the model turned into files, each proven by the tool that will read it.

Owns the one renderer (:mod:`~halab.render.hosts`: spec and roles -> every host's files), the
validators (:mod:`~halab.render.validate`), a stack's Pulumi outputs
(:mod:`~halab.render.outputs`), the picture of a lab (:mod:`~halab.render.picture`) and the
generated docs/configuration.md (:mod:`~halab.render.docs`).

May import: halab.plumbing, halab.model.
"""
