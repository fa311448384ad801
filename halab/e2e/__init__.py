"""The end-to-end scenario on real VMs: ``make e2e`` and ``make check``.

Owns ``launch.py`` (the engine, the image and the project's libvirtd set up, then the run),
``run.py`` (the end-to-end run on Pulumi's Automation API: up, no-diff, drills, scale out,
replace, drift, interrupt, destroy), ``watchdog.py`` (every operation bounded), ``timings.py``
(what the engine reported, and how long each step took), ``plan.py`` (a preview's plan judged),
``check.py`` (the drills against a deployed lab of VMs: ``python -m halab check``, and
``python -m halab plan-check``). Their commands are subcommands of ``python -m halab``, the one
command line. The lab it deploys and drills is :mod:`halab.vmlab`.

May import: halab.plumbing, halab.model, halab.target, halab.machine, halab.vmlab,
halab.drills, halab.fortigate (its stand-in runs the emulator: :mod:`halab.fortigate.site`).
"""
