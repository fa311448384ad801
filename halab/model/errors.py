"""Config errors a person can act on: one line, naming the key and the offending value."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from halab.plumbing.roots import PROJECT


class ConfigError(Exception):
    """Bad stack config. ``str()`` is one line: ``ha-web-lab:<key> = <value>: <reason>``."""

    def __init__(self, key: str, value: Any, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(self.line())

    def line(self) -> str:
        """The one-line message shown to the user."""
        # Not config keys: the stack's name and the environment the Pulumi run has.
        bare = self.key.startswith((PROJECT, "/", ".")) or self.key in ("stack", "SSH_AUTH_SOCK")
        key = self.key if bare else f"{PROJECT}:{self.key}"
        return f"{key} = {_show(self.value)}: {self.reason}"


class TopologyError(ValueError):
    """Raised inside the spec's cross-field checks; carries the key it is about."""

    def __init__(self, key: str, value: Any, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"{key} = {_show(value)}: {reason}")


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    if value is None:
        text = "(not set)"
    return text if len(text) <= 120 else text[:117] + "..."


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(str(part)):
            # A key with spaces, quotes or a line break (a typo in YAML) is shown quoted, so the
            # message stays one line and shows exactly what was typed.
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _lookup(data: Any, loc: Sequence[int | str]) -> Any:
    for part in loc:
        try:
            if isinstance(data, Mapping):
                data = data[part]
            elif isinstance(data, Sequence) and not isinstance(data, str):
                data = data[int(part)]
            else:
                return None
        except (KeyError, IndexError, ValueError, TypeError):
            return None
    return data


def from_validation_error(
    exc: ValidationError, data: Mapping[str, Any], sections: Collection[str] = ()
) -> ConfigError:
    """The first error of a pydantic failure, as a :class:`ConfigError` on the config key.

    ``sections``: names the model nests the flat config under (``vrrp``, ``edge``...); they are
    no part of a key the user wrote, so they are left out of the one the error names.
    """
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, TopologyError):
        return ConfigError(cause.key, cause.value, cause.reason)
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    while len(loc) > 1 and loc[0] in sections:
        loc = loc[1:]
    # pydantic appends the tag of a union branch ("str", "int") to loc; drop what the data lacks.
    while loc and _lookup(data, loc) is None and err["type"] not in ("missing", "extra_forbidden"):
        if _lookup(data, loc[:-1]) is None or not isinstance(loc[-1], str):
            break
        loc = loc[:-1]
    key = _path(loc) or PROJECT
    value = err.get("input")
    reason = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        reason = "required key is missing"
        value = None
    elif err["type"] == "extra_forbidden":
        reason = "unknown key (check its spelling against Pulumi.yaml's config section)"
    return ConfigError(key, value, reason)
