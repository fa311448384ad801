"""The real thing on VMs: a deployed lab as a drill target (:class:`~halab.e2e.vmlab.VmLab`),
the check against it (``python -m halab check``: ``check.py``), ``make e2e`` (``launch.py`` sets
up the engine, the image and the project's libvirtd, then ``run.py``, the end-to-end run on
Pulumi's Automation API, every operation bounded by ``watchdog.py``), the preview plan check
(``parse.py``) and the clean-up of a lab's leftovers (``reclaim.py``)."""
