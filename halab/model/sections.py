"""The spec's sections: VM, VRRP, HAProxy, edge (the FortiGate inside it) and readiness.

Users write flat config keys (``ha-web-lab:vrrpAdvertIntervalMs``), as Pulumi wants them; each
key belongs to one section, and a section is a model with its own checks, so a component or a
template takes the one section it needs (``spec.vrrp``, ``spec.haproxy``) instead of the whole
spec. A field's alias is its config key, so an error names the key the user wrote. Checks that
need more than one section (the VIP in the DMZ, fast detection against the number of LBs) are
the spec's own (:class:`halab.model.spec.LabSpec`).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from halab.model.errors import TopologyError

DEFAULT_BASE_IMAGE = (
    "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
)
DEFAULT_RETRY_ON = "conn-failure empty-response response-timeout 502 503 504"
#: HAProxy's cap on the pause before it retries a server that refused a connection.
RETRY_TURNAROUND_CAP_S = 1.0
#: A libvirt connection URI (driver[+transport]://[user@][host][:port]/path[?params]), as
#: libvirt's own parser splits it; the checks of each part are in ``VmSpec._libvirt_uri``.
LIBVIRT_URI = re.compile(
    r"(?P<driver>[a-z0-9]+)(?:\+(?P<transport>[a-z0-9]+))?://"
    r"(?P<authority>[^/?#\s]*)(?P<path>/[^?#\s]*)(?:\?(?P<query>[^#\s]*))?"
)
LIBVIRT_TRANSPORTS = ("unix", "ssh", "libssh", "libssh2", "tcp", "tls", "ext")
#: The options sshd(8) knows in an authorized_keys line (AUTHORIZED_KEYS FILE FORMAT). sshd
#: ignores a line with any other option, so a typo would lock the user out of every VM.
SSH_KEY_OPTIONS = frozenset(
    {
        "agent-forwarding", "cert-authority", "command", "environment", "expiry-time", "from",
        "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-touch-required", "no-user-rc",
        "no-x11-forwarding", "permitlisten", "permitopen", "port-forwarding", "principals", "pty",
        "restrict", "tunnel", "user-rc", "verify-required", "x11-forwarding",
    }
)  # fmt: skip
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
#: FortiOS limits the provider enforces (terraform-provider-fortios 1.20.0, the one pulumiverse
#: fortios 0.0.6 wraps): the largest policy id.
FORTIOS_MAX_POLICY_ID = 2147482999
#: The FortiGate-VM's least size the lab accepts. 1 vCPU is the smallest FortiGate-VM licence
#: (FG-VM01); 2 GiB of memory is what the lab asks for and no Fortinet page found here confirms
#: it as FortiOS's own minimum (docs/fortigate-vm.md: unproven), so less is refused rather than
#: guessed at.
FORTIGATE_VM_MIN_VCPUS = 1
FORTIGATE_VM_MIN_MEMORY_MIB = 2048
#: An API token FortiOS takes in plain text in a bootstrap config: exactly 30 characters
#: (fortinet/azure-templates, FortiGate/Terraform/A-Single-VM/terraform/customdata.tpl: "An
#: unencrypted key can provided (exact 30 char long)"). Letters and digits only: that is what
#: FortiOS generates, and nothing in them needs quoting on a CLI line.
FORTIOS_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9]{30}")
#: VRRP's master-down timer, in adverts (RFC 5798); Keepalived's default.
STANDARD_DOWN_TIMER_ADVERTS = 3
#: Adverts that bound VRRP's skew time, which the master-down timer adds to its adverts: the skew
#: is (256 - priority)/256 of an advert in VRRPv3 and that many seconds in VRRPv2 (whose adverts
#: are whole seconds), so less than one advert at any priority, lifted by BFD or not.
SKEW_BOUND_ADVERTS = 1
#: Seconds Keepalived's VRRP waits after a start with fast detection, so BFD is up and steady
#: first. Keepalived 2.2.7's BFD sends every 0.75-0.9 s until the session is up (its idle_tx);
#: a session that has just come up then often expires 30 ms later, because the peer still sends
#: at that idle rate, and starts over. In the lab one start took 2 s to come up for good and
#: another 5 s (four such bounces); 2 s was too short once (the returning LB took the VIP).
VRRP_STARTUP_DELAY_S = 10.0


def _dotted_quad(value: Any) -> Any:
    # pydantic would read 167837796 (or True) as an address; in a config file that is a typo.
    if isinstance(value, bool | int | float):
        raise ValueError("give the address as text, like 10.0.1.100")
    return value


#: An IPv4 address, and a network, written as text.
Address = Annotated[IPv4Address, BeforeValidator(_dotted_quad)]
Network = Annotated[IPv4Network, BeforeValidator(_dotted_quad)]


def _whole_number(value: Any) -> Any:
    # pydantic would read true as 1 and 2.0 as 2; in a config file either is a slip. Values
    # Pulumi hands over as text ("3") are decoded by the readers before they get here.
    if isinstance(value, bool):
        raise ValueError("a whole number is expected here, not true/false")
    if not isinstance(value, int):
        raise ValueError("a whole number is expected here")
    return value


def _true_or_false(value: Any) -> Any:
    # pydantic would read 1, "yes" and "on" as true; YAML and JSON write true and false.
    if not isinstance(value, bool):
        number = isinstance(value, int | float)
        raise ValueError("true or false is expected here" + (", not a number" if number else ""))
    return value


#: A number that is never a boolean, and a boolean that is never a number.
Integer = Annotated[int, BeforeValidator(_whole_number)]
Boolean = Annotated[bool, BeforeValidator(_true_or_false)]
MAX_PORT = 65535


def check_port(text: str) -> None:
    """Raise ValueError unless ``text`` is a TCP port, 1-65535."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PORT):
        raise ValueError(f"port {text} is not a TCP port (1-{MAX_PORT})")


def check_text(value: Any, *, multiline: bool = False) -> Any:
    """Raise ValueError when a string (or a list's string) has a control character or ends with
    a line break; ``multiline`` text (a PEM) may have line breaks.

    A YAML block scalar (``key: |``) keeps a final line break, and a pasted value can carry a
    tab or an escape: every tool the value goes to (libvirt, cloud-init, FortiOS, a shell line)
    would take it as part of the name.
    """
    items = value if isinstance(value, list | tuple) else [value]
    for index, item in enumerate(items):
        if not isinstance(item, str):
            continue
        where = f"item {index} " if item is not value else ""
        for position, char in enumerate(item):
            if unicodedata.category(char) != "Cc" or (multiline and char in "\r\n"):
                continue
            if char == "\n" and position == len(item) - 1:
                raise ValueError(
                    f"{where}ends with a line break (YAML's `key: |` keeps one: write `key: |-`, "
                    "or the value on one line)"
                )
            raise ValueError(f"{where}has the control character {char!r} at position {position}")
    return value


class EdgeKind(StrEnum):
    """What sits between the public zone and the VIP."""

    FORTIGATE = "fortigate"
    #: A FortiGate-VM the stack creates from the user's image, then configures like ``fortigate``.
    FORTIGATE_VM = "fortigate-vm"
    LINUX = "linux"
    NONE = "none"

    @property
    def is_fortigate(self) -> bool:
        """A FortiGate configured through the FortiOS provider (the user's, or the stack's VM)."""
        return self in (EdgeKind.FORTIGATE, EdgeKind.FORTIGATE_VM)


class DomainType(StrEnum):
    """libvirt domain type: ``kvm`` on real hypervisors, ``qemu`` (TCG) where KVM is unusable."""

    KVM = "kvm"
    QEMU = "qemu"


def _section_of(field: FieldInfo) -> type[Section] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def config_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """Every config key of a model, its sections' keys included, with its field."""
    out: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        inner = _section_of(field)
        if inner is not None:
            out.update(config_fields(inner))
        else:
            out[field.alias or name] = field
    return out


def section_names(model: type[BaseModel]) -> frozenset[str]:
    """The names a model nests sections under, its sections' own included."""
    out: set[str] = set()
    for name, field in model.model_fields.items():
        inner = _section_of(field)
        if inner is not None:
            out |= {field.alias or name, *section_names(inner)}
    return frozenset(out)


def group_keys(model: type[BaseModel], data: Any) -> Any:
    """Flat config keys in, one nested mapping per section of ``model`` out.

    Keys of no section stay where they are, for the "unknown key" error. A key may share its
    name with a section ("edge" is the edge kind and the edge section): it is taken out before
    the section is put in.
    """
    if not isinstance(data, Mapping):
        return data
    flat = dict(data)
    for name, field in model.model_fields.items():
        inner = _section_of(field)
        if inner is not None:
            keys = config_fields(inner)
            taken = {k: flat.pop(k) for k in list(flat) if k in keys}
            flat[field.alias or name] = taken
    return flat


class Section(BaseModel):
    """A group of config keys: its fields' aliases are the keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)
    #: Fields whose text may span lines (a PEM); every other string is one clean line.
    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _take_own_keys(cls, data: Any) -> Any:
        return group_keys(cls, data)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any, info: ValidationInfo) -> Any:
        return check_text(value, multiline=info.field_name in cls.MULTILINE)


class VmSpec(Section):
    """How every VM is made: the hypervisor, the image, the size, the admin login."""

    libvirt_uri: str = Field("qemu:///system", alias="libvirtUri")
    domain_type: DomainType = Field(DomainType.KVM, alias="domainType")
    base_image: str = Field(DEFAULT_BASE_IMAGE, alias="baseImage")
    kernel: str = Field("", alias="kernel")
    initrd: str = Field("", alias="initrd")
    kernel_cmdline: str = Field(
        "root=/dev/vda rw console=ttyS0 net.ifnames=0", alias="kernelCmdline"
    )
    storage_pool_path: str = Field("", alias="storagePoolPath")
    ssh_public_keys: tuple[str, ...] = Field((), alias="sshPublicKeys")
    admin_user: str = Field("lab", alias="adminUser")
    install_packages: Boolean = Field(True, alias="installPackages")
    #: The Debian release of the project's image (``make up`` builds it when the stack has no
    #: baseImage); empty: the release of the machine that builds it, whose tools validated the
    #: lab's files.
    image_release: Literal["", "bookworm", "trixie"] = Field("", alias="imageRelease")
    default_vcpus: Integer = Field(1, ge=1, le=64, alias="defaultVcpus")
    default_memory_mib: Integer = Field(1024, ge=256, le=262144, alias="defaultMemoryMib")

    @field_validator("libvirt_uri")
    @classmethod
    def _libvirt_uri(cls, value: str) -> str:
        example = "e.g. qemu:///system or qemu+ssh://user@host/system"
        match = LIBVIRT_URI.fullmatch(value)
        if match is None:
            raise ValueError(f"not a libvirt URI ({example})")
        _authority_port(match["authority"])
        if match["driver"] != "qemu":
            raise ValueError(
                f"the lab's domains are QEMU/KVM, so the driver is qemu, not {match['driver']!r}"
            )
        transport = match["transport"]
        if transport is not None and transport not in LIBVIRT_TRANSPORTS:
            raise ValueError(
                f"unknown libvirt transport {transport!r} (one of {', '.join(LIBVIRT_TRANSPORTS)})"
            )
        if match["path"] == "/session":
            raise ValueError(
                "a session libvirtd cannot make the lab's bridged networks: use /system"
            )
        if match["path"] != "/system":
            raise ValueError(f"the path of a QEMU URI is /system ({example})")
        return value

    @field_validator("ssh_public_keys")
    @classmethod
    def _ssh_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if not is_ssh_public_key(key):
                raise ValueError(
                    f"{_short(key)!r} is not an SSH public key line (expected e.g. "
                    "'ssh-ed25519 AAAA... comment', optionally after authorized_keys options "
                    "like 'from=\"10.0.0.0/8\"'; never paste a private key)"
                )
        return value

    @field_validator("admin_user")
    @classmethod
    def _admin_user(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value) or value == "root":
            raise ValueError("not a valid non-root user name")
        return value

    @model_validator(mode="after")
    def _files_exist(self) -> VmSpec:
        for key, value in (("baseImage", self.base_image), ("kernel", self.kernel),
                           ("initrd", self.initrd)):  # fmt: skip
            if value and "://" not in value and not Path(value).expanduser().is_file():
                raise TopologyError(key, value, "no such file on this machine")
        return self


class VrrpSpec(Section):
    """Keepalived's VRRP group of the LBs, and BFD between them (fast detection)."""

    version: Annotated[Literal[2, 3], BeforeValidator(_whole_number)] = Field(
        3, alias="vrrpVersion"
    )
    router_id: Integer = Field(51, alias="vrrpRouterId")
    advert_interval_ms: Integer = Field(40, alias="vrrpAdvertIntervalMs")
    #: One per lb host in config order; empty derives them
    # (:func:`halab.model.spec.derived_priorities`).
    priorities: tuple[Integer, ...] = Field((), alias="vrrpPriorities")
    preempt: Boolean = Field(False, alias="vrrpPreempt")
    realtime: Boolean = Field(True, alias="vrrpRealtime")
    #: BFD between the LBs, tracked by VRRP: a dead master is seen in bfd_interval x multiplier.
    fast_detection: Boolean = Field(False, alias="vrrpFastDetection")
    #: Adverts in the master-down timer as configured: 0 picks (:attr:`master_down_adverts`).
    down_timer_adverts: Integer = Field(0, ge=0, le=100, alias="vrrpDownTimerAdverts")
    bfd_interval_ms: Integer = Field(10, ge=1, le=1000, alias="bfdIntervalMs")
    bfd_multiplier: Integer = Field(3, ge=2, le=255, alias="bfdMultiplier")

    @field_validator("router_id")
    @classmethod
    def _router_id_range(cls, value: int) -> int:
        if not 1 <= value <= 255:
            raise ValueError("a VRRP virtual router id is 1-255")
        return value

    @field_validator("priorities")
    @classmethod
    def _priorities(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= p <= 254 for p in value):
            raise ValueError("VRRP priorities are 1-254 (255 is reserved for the address owner)")
        if len(set(value)) != len(value):
            raise ValueError("VRRP priorities must differ, or the higher IP wins by accident")
        return value

    @model_validator(mode="after")
    def _timers(self) -> VrrpSpec:
        interval = self.advert_interval_ms
        key = "vrrpAdvertIntervalMs"
        if self.version == 2 and (interval % 1000 or not 1000 <= interval <= 255000):
            raise TopologyError(
                key,
                interval,
                "VRRPv2 adverts are whole seconds (1000-255000 ms); "
                "set vrrpVersion 3 for sub-second adverts",
            )
        if self.version == 3 and (interval % 10 or not 10 <= interval <= 40950):
            raise TopologyError(
                key, interval, "VRRPv3 adverts are centiseconds: 10-40950 ms in steps of 10"
            )
        if not self.fast_detection:
            if self.down_timer_adverts == 1:
                raise TopologyError(
                    "vrrpDownTimerAdverts",
                    1,
                    "a one-advert master-down timer without BFD fails over whenever one advert "
                    "is late: set vrrpFastDetection true, or 2 or more",
                )
            return self
        detection_ms = self.bfd_interval_ms * self.bfd_multiplier
        if detection_ms >= interval:
            raise TopologyError(
                "bfdIntervalMs",
                self.bfd_interval_ms,
                f"BFD sees a dead peer after bfdIntervalMs x bfdMultiplier = {detection_ms} ms, "
                f"no sooner than one VRRP advert ({interval} ms): fast "
                "detection would gain nothing; lower it, or lower bfdMultiplier",
            )
        if self.preempt:
            raise TopologyError(
                "vrrpPreempt",
                True,
                "fast detection raises a backup's priority while BFD is down, and BFD starts "
                "down: with preempt the backup would take the VIP at every start; set it false",
            )
        return self

    @property
    def master_down_adverts(self) -> int:
        """Adverts in Keepalived's master-down timer (``vrrpDownTimerAdverts``, 0 resolved:
        1 with fast detection, the standard 3 without)."""
        if self.down_timer_adverts:
            return self.down_timer_adverts
        return 1 if self.fast_detection else STANDARD_DOWN_TIMER_ADVERTS

    @property
    def startup_delay_s(self) -> float:
        """Seconds VRRP waits after Keepalived starts (:data:`VRRP_STARTUP_DELAY_S` with fast
        detection, else none)."""
        return VRRP_STARTUP_DELAY_S if self.fast_detection else 0.0

    @property
    def advert_s(self) -> float:
        """The advert interval, in seconds."""
        return self.advert_interval_ms / 1000

    @property
    def bfd_detection_s(self) -> float:
        """How long BFD takes to call a silent peer down: ``bfdIntervalMs`` x ``bfdMultiplier``
        (it runs only with fast detection)."""
        return self.bfd_interval_ms * self.bfd_multiplier / 1000

    @property
    def detection_s(self) -> float:
        """How long a backup takes to notice a silent master, skew left out: BFD's time with
        fast detection, else the master-down timer's adverts."""
        if self.fast_detection:
            return self.bfd_detection_s
        return self.master_down_adverts * self.advert_interval_ms / 1000

    @property
    def takeover_s(self) -> float:
        """The longest a backup takes to take over from a master that died: the master-down
        timer, its adverts plus the skew (:data:`SKEW_BOUND_ADVERTS`), counted from the dead
        master's last advert. Fast detection does not shorten the timer: BFD's peer-down lifts
        the backup's priority, which only shrinks the skew, so the timer still decides (it is
        one advert there, unless ``vrrpDownTimerAdverts`` says otherwise)."""
        adverts = self.master_down_adverts + SKEW_BOUND_ADVERTS
        return adverts * self.advert_interval_ms / 1000


class HaproxySpec(Section):
    """HAProxy on every LB: health checks, timeouts, retries, the HTTPS redirect."""

    health_check_path: str = Field("/healthz", pattern=r"^/[A-Za-z0-9._~/-]*$",
                                   alias="healthCheckPath")  # fmt: skip
    health_check_interval_ms: Integer = Field(500, ge=100, le=60000, alias="healthCheckIntervalMs")
    health_check_fall: Integer = Field(2, ge=1, le=10, alias="healthCheckFall")
    health_check_rise: Integer = Field(2, ge=1, le=10, alias="healthCheckRise")
    timeout_connect_ms: Integer = Field(1000, ge=100, le=60000, alias="haproxyTimeoutConnectMs")
    retries: Integer = Field(2, ge=0, le=10, alias="haproxyRetries")
    redispatch: Boolean = Field(True, alias="haproxyRedispatch")
    retry_on: str = Field(DEFAULT_RETRY_ON, alias="haproxyRetryOn")
    https_redirect: Boolean = Field(True, alias="httpsRedirect")

    @field_validator("retry_on")
    @classmethod
    def _retry_on(cls, value: str) -> str:
        allowed = {
            "none", "conn-failure", "empty-response", "junk-response", "response-timeout",
            "0rtt-rejected", "all-retryable-errors", "404", "408", "425", "500", "501", "502",
            "503", "504",
        }  # fmt: skip
        bad = [w for w in value.split() if w not in allowed]
        if bad:
            raise ValueError(f"unknown retry-on keyword {bad[0]!r}")
        return value

    @property
    def node_down_s(self) -> float:
        """The longest HAProxy takes to mark a dead web node down: ``fall`` failed checks, each
        timing out after one interval (no ``timeout check`` is set), one interval after the
        last good one."""
        return self.health_check_interval_ms * (self.health_check_fall + 1) / 1000

    @property
    def timeout_connect_s(self) -> float:
        """How long HAProxy waits for a web node to accept a connection, in seconds: what a
        request sent to a node that is gone costs before HAProxy retries it elsewhere."""
        return self.timeout_connect_ms / 1000

    @property
    def retry_turnaround_s(self) -> float:
        """How long HAProxy waits before it retries a web node that refused a connection:
        min(``timeout connect``, 1 s), so that a node which is restarting is not hammered."""
        return min(self.timeout_connect_s, RETRY_TURNAROUND_CAP_S)

    @property
    def refused_request_s(self) -> float:
        """The longest a request waits at HAProxy while every web node refuses connections: a
        turn-around before each retry. That bound holds with one web node, where every retry
        waits; with more, round robin often retries another node at once and fewer waits occur."""
        return round(self.retries * self.retry_turnaround_s, 3)


class FortiGateSpec(Section):
    """The FortiGate edge: where its API is, how it is trusted, how its objects are named."""

    MULTILINE = frozenset({"ca_bundle"})

    host: str = Field("", alias="fortigateHost")
    wan_interface: str = Field("port1", alias="fortigateWanInterface")
    dmz_interface: str = Field("port2", alias="fortigateDmzInterface")
    insecure: Boolean = Field(False, alias="fortigateInsecure")
    ca_bundle_file: str = Field("", alias="fortigateCaBundleFile")
    ca_bundle: str = Field("", alias="fortigateCaBundle")
    vdom: str = Field("root", alias="fortigateVdom")
    policy_id: Integer = Field(1000, ge=1, le=FORTIOS_MAX_POLICY_ID, alias="fortigatePolicyId")
    name_prefix: str = Field("", alias="fortigateNamePrefix")
    #: ``edge: fortigate-vm`` only: the user's FortiGate-VM KVM image and its licence.
    image: str = Field("", alias="fortigateImage")
    license_file: str = Field("", alias="fortigateLicenseFile")
    #: The FortiGate's own address in the Public zone (its WAN port, where the API answers);
    #: None derives it (:data:`halab.model.spec.FORTIGATE_WAN_OFFSET`).
    wan_address: Address | None = Field(None, alias="fortigateWanAddress")
    vcpus: Integer = Field(FORTIGATE_VM_MIN_VCPUS, ge=FORTIGATE_VM_MIN_VCPUS, le=32,
                           alias="fortigateVcpus")  # fmt: skip
    memory_mib: Integer = Field(FORTIGATE_VM_MIN_MEMORY_MIB, ge=FORTIGATE_VM_MIN_MEMORY_MIB,
                                le=262144, alias="fortigateMemoryMib")  # fmt: skip

    @field_validator("wan_address", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Pulumi.yaml declares it as a string with default "": that means "derive it".
        return None if value == "" else value

    @field_validator("host")
    @classmethod
    def _fortigate_host(cls, value: str) -> str:
        # The provider builds https://<hostname>/api/v2/...: a scheme or a path breaks every call.
        found = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::(?P<port>[0-9]+))?", value)
        if value and found is None:
            raise ValueError("give the FortiGate's address or name, optionally :port, no https://")
        if found is not None and found["port"] is not None:
            check_port(found["port"])
        return value

    def check(self, kind: EdgeKind) -> None:
        """What a stack with ``edge: fortigate`` or ``fortigate-vm`` needs of these keys (the
        token, the object names and the derived API address are checked by the spec, which
        knows the secrets, the zones and the lab's name)."""
        if kind is EdgeKind.FORTIGATE_VM:
            self._check_vm()
        elif not self.host:
            raise TopologyError(
                "fortigateHost",
                "",
                "edge is 'fortigate': set the FortiGate's API address with "
                "`pulumi config set fortigateHost 192.0.2.1`",
            )
        for key, name in (
            ("fortigateWanInterface", self.wan_interface),
            ("fortigateDmzInterface", self.dmz_interface),
        ):
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
                raise TopologyError(key, name, "not a FortiOS interface name")
        # The provider refuses to start when it must verify the FortiGate's certificate and has
        # no CA to verify it with ("CA Bundle should be set when insecure is false").
        file, pem = self.ca_bundle_file, self.ca_bundle
        if file and pem:
            raise TopologyError(
                "fortigateCaBundle", "(a PEM)", "fortigateCaBundleFile is set too: set one of them"
            )
        if file and not Path(file).expanduser().is_file():
            raise TopologyError("fortigateCaBundleFile", file, "no such file on this machine")
        if pem and "-----BEGIN CERTIFICATE-----" not in pem:
            raise TopologyError(
                "fortigateCaBundle", pem[:40], "not a PEM certificate (-----BEGIN CERTIFICATE-----)"
            )
        if not (self.insecure or file or pem):
            raise TopologyError(
                "fortigateInsecure",
                False,
                "the FortiOS provider verifies the FortiGate's certificate and needs the CA that "
                "signed it: `pulumi config set fortigateCaBundleFile /path/to/ca.pem` (or "
                "fortigateCaBundle with the PEM), or `pulumi config set fortigateInsecure true` "
                "for a lab FortiGate with its factory self-signed certificate",
            )

    def _check_vm(self) -> None:
        # Both files are read by this machine (the image is uploaded to the pool, the licence
        # goes onto the config drive): a typo must stop the run before anything exists.
        if not self.image:
            raise TopologyError(
                "fortigateImage",
                "",
                "edge is 'fortigate-vm': give the path of your FortiGate-VM KVM image with "
                "`pulumi config set fortigateImage /path/to/fortios.qcow2` (from "
                "support.fortinet.com; the lab cannot download it)",
            )
        for key, value in (("fortigateImage", self.image),
                           ("fortigateLicenseFile", self.license_file)):  # fmt: skip
            if value and not Path(value).expanduser().is_file():
                raise TopologyError(key, value, "no such file on this machine")


class EdgeSpec(Section):
    """What maps the public IP onto the VIP: a FortiGate, the Linux edge VM, or nothing."""

    kind: EdgeKind = Field(EdgeKind.LINUX, alias="edge")
    public_ip: Address | None = Field(None, alias="publicIp")
    ports: tuple[Integer, ...] = Field((80, 443), alias="edgePorts")
    allowed_sources: tuple[Network, ...] = Field(
        (IPv4Network("0.0.0.0/0"),), alias="edgeAllowedSources"
    )
    source_nat: Boolean = Field(False, alias="edgeSourceNat")
    fortigate: FortiGateSpec = Field(default_factory=FortiGateSpec, alias="fortigate")

    @field_validator("public_ip", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Pulumi.yaml declares it as a string with default "": that means "derive it".
        return None if value == "" else value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for port in value:
            check_port(str(port))
        if not value or len(set(value)) != len(value):
            raise ValueError(f"give distinct TCP ports 1-{MAX_PORT}")
        return value

    @model_validator(mode="after")
    def _fortigate_keys(self) -> EdgeSpec:
        if self.kind.is_fortigate:
            self.fortigate.check(self.kind)
        return self


class ReadinessSpec(Section):
    """The gates `pulumi up` waits for: on or off, and how long each may wait."""

    enabled: Boolean = Field(True, alias="readiness")
    timeout_s: Integer = Field(900, ge=30, le=7200, alias="readinessTimeoutS")


def _authority_port(authority: str) -> None:
    """Check the port of a URI's ``[user@]host[:port]`` (the host may be ``[IPv6]``)."""
    host = authority.rpartition("@")[2]
    port = host.rpartition("]")[2] if host.startswith("[") else host
    if ":" in port:
        check_port(port.rpartition(":")[2])


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def is_ssh_public_key(text: str) -> bool:
    """True for one OpenSSH ``authorized_keys`` line whose base64 blob names its key type.

    The line may start with options (``from="10.0.0.0/8",no-pty ssh-ed25519 AAAA... c``), as
    sshd(8) allows; each option must be one sshd knows.
    """
    line = text.strip()
    if "\n" in line:
        return False
    if not line.startswith(SSH_KEY_TYPES):
        options, line = _split_key_options(line)
        if options is None or not all(_known_key_option(o) for o in options):
            return False
    parts = line.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return False
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(blob) < 4:
        return False
    length = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + length] == parts[0].encode()


def _split_key_options(line: str) -> tuple[list[str] | None, str]:
    """Split the leading options off an authorized_keys line, as sshd does: commas separate
    options, double quotes (with backslash escapes) may hold spaces and commas, and the first
    unquoted blank ends them. ``None`` when a quote is left open."""
    options: list[str] = []
    current, quoted, i = "", False, 0
    while i < len(line):
        char = line[i]
        if char == "\\" and quoted and i + 1 < len(line):
            current += line[i : i + 2]
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in " \t":
            break
        elif not quoted and char == ",":
            options.append(current)
            current = ""
            i += 1
            continue
        current += char
        i += 1
    if quoted:
        return None, ""
    options.append(current)
    return options, line[i:].lstrip()


def _known_key_option(option: str) -> bool:
    name, has_value, value = option.partition("=")
    if name.lower() not in SSH_KEY_OPTIONS:
        return False
    # Options with a value take it in double quotes (sshd refuses a bare one).
    return not has_value or (len(value) >= 2 and value[0] == value[-1] == '"')
