"""The namespace lab as a test bench: the drills and the failover benchmark run on it.

Owns ``python -m halab lab drill|bench`` (:mod:`~halab.bench.cli`) and the benchmark
(:mod:`~halab.bench.benchmark`, also ``scripts/benchmark.py``): drills N times per stack,
medians in a table, and the advert-interval sweep. It brings one lab (:mod:`halab.nslab`)
together with the drills (:mod:`halab.drills`), which know each other only through the drill
protocol; the VMs' counterpart is :mod:`halab.e2e`.

May import: halab.plumbing, halab.model, halab.render, halab.target, halab.nslab, halab.drills.
"""
