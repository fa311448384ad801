"""The progress line of every long command: ``NAME: text``, one flushed line at a time."""

import sys
from collections.abc import Callable


def teller(name: str, *, to_stdout: bool = False) -> Callable[[str], None]:
    """A ``say(text)`` that prints ``NAME: text`` as one flushed line: on stderr by default, so
    stdout carries only what a command's callers read (a URI, paths, the bin folder)."""

    def say(text: str) -> None:
        print(f"{name}: {text}", file=sys.stdout if to_stdout else sys.stderr, flush=True)

    return say
