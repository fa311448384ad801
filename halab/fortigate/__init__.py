"""A FortiOS REST API emulator of the lab's own: a test double, strict where FortiOS is strict.

It serves the calls the FortiOS provider (pulumiverse-fortios 0.0.6, which wraps
terraform-provider-fortios 1.20.0 and its in-tree ``sdk/``) makes for the objects the lab's edge
manages: firewall addresses, VIPs, VIP groups, custom services and policies. Each rule names its
public source where it is written (:mod:`halab.fortigate.schema`); what no source settles is
refused, not guessed, and listed in docs/fortigate-emulator.md.

Owns:

- :mod:`halab.fortigate.schema`: the tables, their fields and the FortiOS rules for each value.
- :mod:`halab.fortigate.store`: objects per VDOM, referential integrity, FortiOS's error codes.
- :mod:`halab.fortigate.server`: HTTPS, token auth, the REST paths and FortiOS's response shape.
- :mod:`halab.fortigate.tls`: a throwaway CA and a server certificate signed by it.
- :mod:`halab.fortigate.nft`: with ``--apply-nft``, its VIPs and policies as nftables rules,
  loaded after every change (``fortigate.nft.j2``).
- :mod:`halab.fortigate.site`: one emulator where a lab runs it (its address, files and command
  line), for the namespace lab's edge and the e2e's stand-in.

It runs where a FortiGate would (the lab's edge), beside the labs, never inside them; the labs
start it as a process, and may read :mod:`halab.fortigate.site` to know where it is.

May import: halab.plumbing, halab.model.
"""

from __future__ import annotations

#: Every answer carries this, so nobody mistakes the emulator for a FortiGate.
EMULATOR_NOTICE = "ha-web-lab fortigate-emulator: a test double, not a FortiGate"
