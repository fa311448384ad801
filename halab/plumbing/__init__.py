"""Plumbing: what every layer stands on, and what runs before the project's virtualenv exists.

Owns child processes (:mod:`~halab.plumbing.process`: one with its output in a log;
:mod:`~halab.plumbing.procs`: processes reached by PID and start time, spawned through
:mod:`~halab.plumbing.nsexec`; :mod:`~halab.plumbing.netns`: network namespaces), the
project's name and its cache and state folders (:mod:`~halab.plumbing.roots`), a lock within a
time limit (:mod:`~halab.plumbing.locks`), the progress line (:mod:`~halab.plumbing.teller`),
which tool comes from which Debian package (:mod:`~halab.plumbing.hostdeps`), ``virsh``
(:mod:`~halab.plumbing.virsh`) and a throwaway certificate (:mod:`~halab.plumbing.tls`).

Standard library only: ``python3 -m halab.plumbing.hostdeps`` and the machine's fresh root
and engine run on Debian's python3 before the virtualenv exists.

May import: nothing of halab.
"""
