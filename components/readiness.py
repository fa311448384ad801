"""Readiness gates: `pulumi up` ends only when the lab serves traffic.

Each VM gets a remote command that waits for cloud-init and checks the role's own health; then a
tier gate checks through the VIP (from an LB) that every web node answers, and, when an edge
exists, a local gate checks the same through the public IP from this machine. The scripts are
rendered (and shellchecked) like every other file; their triggers carry the seed's hash, so a
config change re-checks the lab.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from halab.model.plan import ResolvedHost
from halab.model.roles import Role
from halab.model.sections import EdgeKind, ReadinessSpec
from halab.model.spec import LabSpec
from halab.render.hosts import RenderedHost, vip_check_script

#: Seconds per SSH dial attempt; the attempt count follows from readinessTimeoutS.
DIAL_TIMEOUT_S = 10
#: pulumi-command 1.2.1 waits between dial attempts with a backoff from 0.1 s capped at 5 s
#: (pulumi's retry.Until defaults), so one failed attempt costs up to this many seconds.
DIAL_ATTEMPT_S = DIAL_TIMEOUT_S + 5


def agent_answers(socket_path: str | None) -> bool:
    """Whether an SSH agent accepts connections at ``socket_path`` (``SSH_AUTH_SOCK``)."""
    if not socket_path:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(socket_path)
    except OSError:
        return False
    return True


@dataclass(kw_only=True)
class SshAccess:
    """How this machine logs in to the VMs: a private key (secret config) or an SSH agent.

    With a key, the gates log in with it alone: no agent socket is handed to pulumi-command
    (which still dials ``SSH_AUTH_SOCK`` from its environment when one is set, so the program
    checks first that an agent answers there). Without one, the agent at ``agent_socket``.
    """

    user: str
    private_key: pulumi.Output[str] | None = None
    agent_socket: str | None = None

    def connection(
        self, readiness: ReadinessSpec, host: ResolvedHost
    ) -> command.remote.ConnectionArgs:
        """Connection args with bounded dialing: VMs may still be booting when we start."""
        return command.remote.ConnectionArgs(
            host=str(host.management_address),
            user=self.user,
            private_key=self.private_key,
            agent_socket_path=self.agent_socket if self.private_key is None else None,
            per_dial_timeout=DIAL_TIMEOUT_S,
            # All attempts together stay within readinessTimeoutS. (The per-dial timeout bounds
            # only the TCP connect: the handshake and the command have no bound in the provider,
            # which is why the gate scripts bound their own waits.)
            dial_error_limit=max(3, readiness.timeout_s // DIAL_ATTEMPT_S),
        )


def host_gate(
    name: str,
    readiness: ReadinessSpec,
    host: ResolvedHost,
    seed: pulumi.Output[RenderedHost],
    ssh: SshAccess,
    *,
    triggers: list[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> command.remote.Command:
    """The per-VM gate (created by LabVm, parented to it, after its domain).

    It also converges the VM's role files, so a config change (a new web node in HAProxy's
    backends, another advert interval) reaches running VMs by a reload, not a new VM. The script
    (rendered with the seed) carries the files, so for an LB it is secret like the seed.
    """
    return command.remote.Command(
        f"{name}-ready",
        connection=ssh.connection(readiness, host),
        create=seed.apply(lambda s: s.gate_script),
        # Rerun whenever what the VM should hold changes, or the VM is new. Plain values: a
        # secret trigger unknown at preview is "malformed" to pulumi-command.
        triggers=triggers,
        opts=opts,
    )


@dataclass(kw_only=True)
class TierGateArgs:
    """What the tier gate needs: the host gates to wait for, and SSH to one LB."""

    spec: LabSpec
    ssh: SshAccess
    host_gates: list[pulumi.Resource]
    #: Changes whenever any host's seed changes, so the tier is re-checked too.
    fingerprint: pulumi.Input[str]


class TierGate(pulumi.ComponentResource):
    """Every web node answers through the VIP, and through the public IP when there is an edge."""

    through_vip: command.remote.Command
    through_public_ip: command.local.Command | None

    def __init__(
        self, name: str, args: TierGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:TierGate", name, None, opts)
        spec = args.spec
        lb = spec.plan.hosts_with_role(Role.LB)[0]
        vip_url = f"{spec.plan.scheme}://{spec.vip_address}/"
        self.through_vip = command.remote.Command(
            f"{name}-through-vip",
            connection=args.ssh.connection(spec.readiness, lb),
            create=vip_check_script(spec, lb, vip_url),
            triggers=[args.fingerprint],
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.host_gates),
        )
        self.through_public_ip = None
        if spec.edge.kind is not EdgeKind.NONE:
            # From this machine, the way a client comes in: through the edge's DNAT.
            self.through_public_ip = command.local.Command(
                f"{name}-through-public-ip",
                create=vip_check_script(spec, lb, spec.plan.public_url),
                interpreter=["/bin/bash", "-c"],
                triggers=[args.fingerprint],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.through_vip]),
            )
        self.register_outputs({"vip_url": vip_url})
