"""The Python load generator against a local HTTP server: keep-alive requests, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from halab.nslab.loadgen import run_load
from tests.local_http import serving


@pytest.fixture
def server() -> Iterator[str]:
    with serving() as base:
        yield base


def test_counts_answers_over_keep_alive_connections(server: str) -> None:
    result = asyncio.run(run_load(f"{server}/", connections=2, duration=5.0, max_requests=25))
    assert (result.ok, result.errors) == (50, 0)  # ended by the request bound, not the clock
    assert result.rps > 0


def test_a_non_2xx_answer_is_an_error(server: str) -> None:
    result = asyncio.run(run_load(f"{server}/down", connections=1, duration=5.0, max_requests=3))
    assert (result.ok, result.errors) == (0, 3)
