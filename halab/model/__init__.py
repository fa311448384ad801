"""The model: one stack's config, validated and typed, and everything derived from it.

Owns the reading of a stack's config (:mod:`~halab.model.stackconfig`: its file, the project's
defaults, Pulumi's getter), the config's sections (:mod:`~halab.model.sections`), the spec
(:mod:`~halab.model.spec`: the config validated, with its checks), the plan derived from it
(:mod:`~halab.model.plan`: every address, MAC, interface name, VRRP member and firewall rule),
the kinds of host (:mod:`~halab.model.roles`) and the config's errors
(:mod:`~halab.model.errors`).

May import: halab.plumbing.
"""
