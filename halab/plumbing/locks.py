"""A lock on a file, taken within a time limit: how the image and the libvirtd serialise."""

import fcntl
import time
from typing import IO, Any


def flock_within(handle: IO[Any], timeout: float) -> bool:
    """Take an exclusive lock on an open file within ``timeout`` s; False when it stays held.
    Python opens files close-on-exec, so no child ever inherits the lock."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.2) + 2):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        else:
            return True
    return False
