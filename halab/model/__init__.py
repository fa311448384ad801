"""The model: one stack's config, validated and typed, and everything derived from it.

Owns the reading of a stack's config (:mod:`~halab.model.stackconfig`: its file, the project's
defaults, Pulumi's getter), the config's sections (:mod:`~halab.model.sections`), the spec
(:mod:`~halab.model.spec`: every address, MAC, interface name, VRRP priority and firewall rule),
the kinds of host (:mod:`~halab.model.roles`) and the config's errors
(:mod:`~halab.model.errors`).

May import: halab.plumbing.
"""
