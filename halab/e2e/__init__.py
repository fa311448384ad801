"""The end-to-end run on real VMs: a :class:`~halab.e2e.vmlab.VmLab` drill target, the preview
plan check and the ``check`` command (``python -m halab check --stack STACK``)."""
