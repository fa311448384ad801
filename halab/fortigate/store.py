"""The emulator's configuration database: entries per VDOM and table, with FortiOS's integrity.

- A name is created once (``-5``), an entry in use cannot be deleted (``-23``), and an entry
  cannot name what does not exist (``-651``, terraform-provider-fortios#193's "node_check_object
  fail!"), as :mod:`halab.fortigate.errors` cites.
- What is stored is FortiOS's normal form (:func:`halab.fortigate.schema.check_value`) over its
  defaults, so a read answers what a FortiGate would, not the request.
- It lives in memory; with a state file every change is written there (atomically) and read
  back at start, so an emulator on the lab's edge keeps its configuration across restarts.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from halab.fortigate import schema
from halab.fortigate.errors import (
    ENTRY_EXISTS,
    ENTRY_IN_USE,
    INVALID_VALUE,
    NOT_FOUND,
    FortiOSError,
    command_fail,
    invalid_value,
    unproven,
)

#: A FortiGate-VM's ports as it boots (port1 ... port10), and "any", which a VIP's extintf and
#: a policy's interfaces may name (the provider's own VIP test uses extintf "any":
#: terraform-provider-fortios#123). How many ports a given VM has depends on its vNICs.
DEFAULT_INTERFACES = ("any", *(f"port{n}" for n in range(1, 11)))

Entry = dict[str, Any]


def _factory(interfaces: Iterable[str]) -> dict[str, dict[str, Entry]]:
    """What a factory FortiGate has that the lab's objects name: interfaces, the "all" address,
    the "always" schedule and the predefined services the lab uses (halab.spec
    FORTIOS_PREDEFINED_SERVICES: HTTP and HTTPS) and ALL."""
    services = {
        "HTTP": {"protocol": "TCP/UDP/SCTP", "tcp-portrange": "80"},
        "HTTPS": {"protocol": "TCP/UDP/SCTP", "tcp-portrange": "443"},
        "ALL": {"protocol": "IP", "tcp-portrange": ""},
    }
    return {
        "system/interface": {n: {"name": n} for n in interfaces},
        "firewall.schedule/recurring": {"always": {"name": "always"}},
        "firewall/address": {
            "all": {
                **schema.defaults(schema.ADDRESS),
                "name": "all",
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_OID, "fortigate-emulator all")),
            }
        },
        "firewall.service/custom": {
            name: {**schema.defaults(schema.SERVICE), "name": name, **fields}
            for name, fields in services.items()
        },
    }


class Store:
    """Every VDOM's tables, guarded by one lock (the HTTP server is threaded)."""

    def __init__(
        self,
        vdoms: Iterable[str] = ("root",),
        interfaces: Iterable[str] = DEFAULT_INTERFACES,
        state_file: Path | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._state_file = state_file
        interfaces = tuple(interfaces)
        self._factory_keys = {path: set(entries) for path, entries in _factory(interfaces).items()}
        self._vdoms: dict[str, dict[str, dict[str, Entry]]] = {}
        for vdom in vdoms:
            tables: dict[str, dict[str, Entry]] = {path: {} for path in schema.TABLES}
            tables.update(_factory(interfaces))
            self._vdoms[vdom] = tables
        if state_file is not None and state_file.exists():
            self._load(state_file)

    # -- persistence -------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        saved = json.loads(path.read_text())
        for vdom, tables in saved["vdoms"].items():
            mine = self._vdoms.setdefault(vdom, {p: {} for p in schema.TABLES})
            for table_path, entries in tables.items():
                table = schema.TABLES.get(table_path)
                mine[table_path] = {str(e[table.mkey] if table else e["name"]): e for e in entries}

    def _save(self) -> None:
        if self._state_file is None:
            return
        data = {
            "emulator": "ha-web-lab fortigate-emulator state (not a FortiGate configuration)",
            "vdoms": {
                vdom: {path: list(entries.values()) for path, entries in tables.items()}
                for vdom, tables in self._vdoms.items()
            },
        }
        temp = self._state_file.with_name(self._state_file.name + ".tmp")
        temp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temp, self._state_file)

    def snapshot(self) -> dict[str, dict[str, dict[str, Entry]]]:
        """Every VDOM's tables as they are now, for :meth:`restore`."""
        with self._lock:
            return copy.deepcopy(self._vdoms)

    def restore(self, snapshot: dict[str, dict[str, dict[str, Entry]]]) -> None:
        """Put back what :meth:`snapshot` took (and write it to the state file): a change the
        kernel refused is undone, so the store never says what the firewall does not do."""
        with self._lock:
            self._vdoms = copy.deepcopy(snapshot)
            self._save()

    # -- lookups -----------------------------------------------------------------------------

    def _tables(self, vdom: str) -> dict[str, dict[str, Entry]]:
        tables = self._vdoms.get(vdom)
        if tables is None:
            # FortiOS has an answer for a VDOM it does not have; no source says which.
            raise unproven(f"VDOM {vdom!r} (this emulator has {', '.join(self._vdoms)})")
        return tables

    def _entries(self, vdom: str, path: str) -> dict[str, Entry]:
        tables = self._tables(vdom)
        if path not in tables:
            raise unproven(f"table {path!r}")
        return tables[path]

    def vdoms(self) -> list[str]:
        """The VDOMs this emulator has."""
        return list(self._vdoms)

    def list(self, vdom: str, path: str) -> list[Entry]:
        """Every entry of a table, as FortiOS reads it back."""
        with self._lock:
            return copy.deepcopy(list(self._entries(vdom, path).values()))

    def get(self, vdom: str, path: str, mkey: str) -> Entry:
        """One entry; HTTP 404 with FortiOS's "object not found" code when there is none."""
        with self._lock:
            entry = self._entries(vdom, path).get(mkey)
            if entry is None:
                raise FortiOSError(404, NOT_FOUND, "")
            return copy.deepcopy(entry)

    # -- changes -----------------------------------------------------------------------------

    def create(self, vdom: str, path: str, body: dict[str, Any]) -> int | str:
        """A new entry (POST); its key as FortiOS answers it (a number for policies)."""
        table = self._writable(path)
        with self._lock:
            entries = self._entries(vdom, path)
            values = schema.check_body(table, body)
            missing = sorted(table.required - set(values))
            if missing:
                raise unproven(f"{path} without {', '.join(missing)}")
            mkey = values[table.mkey]
            if table.mkey_is_integer and mkey == 0:
                # "edit 0" takes the next free id in the CLI; the REST answer is unproven.
                raise unproven(f"{table.mkey} 0 (the CLI's next free id)")
            key = str(mkey)
            if not key:
                raise invalid_value(key, f"{table.mkey} must not be empty")
            if key in entries:
                raise command_fail(ENTRY_EXISTS, f"object already exists (mkey='{key}')")
            entry: Entry = {**schema.defaults(table), **values}
            if "uuid" in table.fields and "uuid" not in entry:
                entry["uuid"] = str(uuid.uuid4())
            self._check_references(vdom, table, entry)
            self._check_vip_overlap(vdom, table, entry, replacing=None)
            entries[key] = entry
            self._save()
            return mkey  # type: ignore[no-any-return]

    def update(self, vdom: str, path: str, mkey: str, body: dict[str, Any]) -> int | str:
        """Change the given attributes of an entry (PUT); the others keep their values."""
        table = self._writable(path)
        with self._lock:
            entries = self._entries(vdom, path)
            current = entries.get(mkey)
            if current is None:
                raise FortiOSError(404, NOT_FOUND, "")
            values = schema.check_body(table, body)
            if table.mkey in values and str(values[table.mkey]) != mkey:
                # Renaming moves every reference on a FortiGate; the emulator does not know how
                # the REST API answers it.
                raise unproven(f"renaming {path} {mkey!r} to {values[table.mkey]!r}")
            entry = {**current, **values}
            self._check_references(vdom, table, entry)
            self._check_vip_overlap(vdom, table, entry, replacing=mkey)
            entries[mkey] = entry
            self._save()
            return current[table.mkey]  # type: ignore[no-any-return]

    def delete(self, vdom: str, path: str, mkey: str) -> None:
        """Remove an entry nothing names (FortiOS's -23 otherwise)."""
        self._writable(path)
        with self._lock:
            entries = self._entries(vdom, path)
            if mkey not in entries:
                raise FortiOSError(404, NOT_FOUND, "")
            if mkey in self._factory_keys.get(path, set()):
                raise unproven(f"deleting the factory entry {path} {mkey!r}")
            users = self._users(vdom, path, mkey)
            if users:
                # terraform-provider-fortios#297: the CLI's words, then its return code.
                raise command_fail(ENTRY_IN_USE, f"The entry is used by other {users} entries")
            del entries[mkey]
            self._save()

    # -- rules -------------------------------------------------------------------------------

    @staticmethod
    def _writable(path: str) -> schema.Table:
        table = schema.TABLES.get(path)
        if table is None:
            raise unproven(f"writing table {path!r}")
        return table

    def _check_references(self, vdom: str, table: schema.Table, entry: Entry) -> None:
        tables = self._tables(vdom)
        for _attribute, name, targets in schema.references(table, entry):
            if not any(name in tables.get(target, {}) for target in targets):
                # terraform-provider-fortios#193: a policy naming an interface that does not exist.
                raise command_fail(
                    INVALID_VALUE,
                    f"node_check_object fail! for name {name}",
                    f"value parse error before '{name}'",
                )

    def _users(self, vdom: str, path: str, name: str) -> int:
        """How many entries name ``name`` of table ``path``."""
        count = 0
        for table_path, entries in self._tables(vdom).items():
            table = schema.TABLES.get(table_path)
            if table is None:
                continue
            for entry in entries.values():
                count += any(
                    ref == name and path in targets
                    for _a, ref, targets in schema.references(table, entry)
                )
        return count

    def _check_vip_overlap(
        self, vdom: str, table: schema.Table, entry: Entry, replacing: str | None
    ) -> None:
        # Two VIPs cannot take the same external address and port: the provider's maintainers'
        # and users' account in terraform-provider-fortios#123 (create-before-destroy
        # fails "as the same mapped IP is already in use"). The answer's code is unproven.
        if table is not schema.VIP:
            return
        for other_key, other in self._entries(vdom, table.path).items():
            if other_key == replacing or other_key == entry["name"]:
                continue
            if _vips_overlap(entry, other):
                raise unproven(
                    f"VIP {entry['name']!r} takes {entry['extip']} "
                    f"{entry.get('protocol')}/{entry.get('extport', '*')} which VIP "
                    f"{other_key!r} has"
                )


def _addresses(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last or first))


def _ports(entry: Entry) -> tuple[int, int] | None:
    if entry.get("portforward") != "enable":
        return None  # every port
    low, _, high = str(entry.get("extport", "")).partition("-")
    if not low:
        return None
    return int(low), int(high or low)


def _vips_overlap(a: Entry, b: Entry) -> bool:
    a_low, a_high = _addresses(a.get("extip", schema.NO_ADDRESS))
    b_low, b_high = _addresses(b.get("extip", schema.NO_ADDRESS))
    if a_high < b_low or b_high < a_low:
        return False
    a_ports, b_ports = _ports(a), _ports(b)
    if a_ports is None or b_ports is None:
        return True
    if a.get("protocol") != b.get("protocol"):
        return False
    return not (a_ports[1] < b_ports[0] or b_ports[1] < a_ports[0])
