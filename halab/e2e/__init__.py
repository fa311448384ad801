"""The real thing on VMs: a deployed lab as a drill target (:class:`~halab.e2e.vmlab.VmLab`,
``python -m halab check``), the end-to-end run on Pulumi's Automation API (``make e2e``:
``run.py``, every operation bounded by ``watchdog.py``), the preview plan check (``parse.py``)
and the clean-up of a lab's leftovers (``reclaim.py``)."""
