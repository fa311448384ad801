#!/usr/bin/env python3
"""Benchmark the HA lab in network namespaces (root): drills N times per stack, medians table.

Usage (from the checkout, as root)::

    apt-get install -y haproxy keepalived nginx python3-fastapi python3-uvicorn \\
        nftables wrk      # wrk is optional: without it a Python load loop measures req/s
    venv/bin/python scripts/benchmark.py --runs 3                  # dev and tutorial stacks
    venv/bin/python scripts/benchmark.py --no-drills --sweep       # advert interval x CPU hog

Same as ``python -m halab lab bench``. Prints markdown tables; writes ``benchmark.json`` and every
drill report under ``reports/bench/<time>/`` (or ``--out``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halab.bench.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
