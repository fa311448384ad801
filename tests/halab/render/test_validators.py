"""Every rendered file of every example stack, proven by the real tool that will read it.

The stacks are every ``Pulumi.<stack>.yaml`` in the checkout. Each is rendered once, by the render
command itself (``python -m halab render``), and every applicable check of
:mod:`halab.render.validate` runs on every host, all in parallel, once per module; each
(stack, host, check) is then its own test, failing with the validator's own output.

The tools come from Debian's packages (``scripts/apt-packages.txt``). A missing tool fails its tests
with a message naming the package to install; nothing is skipped.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

import halab.render.hosts as render_module
import halab.render.validate as validate_module
from halab.cli import main as cli_main
from halab.model.roles import PATHS, Role, ZoneName
from halab.model.spec import LabSpec
from halab.model.stackconfig import read_stack
from halab.render.hosts import TEMPLATE_DIR, RenderTarget, render_all, render_host
from halab.render.validate import (
    CHECKS_BY_NAME,
    TOOLS,
    HostTree,
    Problem,
    cloud_config_keys,
    cloud_config_schema_path,
    load_app,
    run_check,
    run_checks,
    sshd_effective_config,
    validate_tree,
    which,
)
from tests.halab.render.validators import (
    TEST_SSH_KEY,
    applicable_checks,
    assert_no_problems,
    example_stacks,
    problems_text,
    render_to_tree,
    write_hosts,
)

#: Runs the real validators (haproxy, keepalived, nginx, cloud-init...): seconds each.
pytestmark = pytest.mark.validators

STACKS = example_stacks()


def _plan() -> list[Any]:
    """(stack, host, check) for every check that has something to read on a host.

    Rendering is pure Python and fast, so collection renders each stack in memory to learn its
    hosts and their files. A stack that does not render gets no entries here; its
    ``test_stack_renders`` fails and says why.
    """
    params = []
    for stack in STACKS:
        try:
            rendered = render_all(read_stack(stack).spec(offline=True))
        except Exception:
            continue
        for host, rendered_host in rendered.items():
            for check in applicable_checks(rendered_host):
                params.append(
                    pytest.param(stack, host, check.name, id=f"{stack}-{host}-{check.name}")
                )
    return params


def _web_hosts() -> list[Any]:
    params = []
    for stack in STACKS:
        try:
            spec = read_stack(stack).spec(offline=True)
        except Exception:
            continue
        params += [
            pytest.param(stack, h.name, id=f"{stack}-{h.name}")
            for h in spec.plan.hosts_with_role(Role.WEB)
        ]
    return params


@dataclasses.dataclass
class Validated:
    """The render command's trees of every stack, and every check's problems on them."""

    trees: dict[tuple[str, str], HostTree]
    problems: dict[tuple[str, str, str], list[Problem]]
    render_errors: dict[str, str]


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Validated:
    """Render every stack with the render command, then run all checks in parallel, once."""
    trees: dict[tuple[str, str], HostTree] = {}
    render_errors: dict[str, str] = {}
    for stack in STACKS:
        out = tmp_path_factory.mktemp(f"render-{stack}")
        code = cli_main(["render", "--stack", stack, "--out", str(out)])
        if code != 0:
            render_errors[stack] = f"python -m halab render --stack {stack} exited {code}"
            continue
        for user_data in sorted(out.glob("*/user-data")):
            trees[(stack, user_data.parent.name)] = HostTree(user_data.parent)
    keys = [
        (stack, host, check.name)
        for (stack, host), tree in trees.items()
        for check in validate_module.CHECKS
        if check.applies(tree.files())
    ]
    results = run_checks([(CHECKS_BY_NAME[c], trees[(s, h)]) for s, h, c in keys])
    return Validated(trees, dict(zip(keys, results, strict=True)), render_errors)


# ---- the example stacks -------------------------------------------------------------------------


def test_there_are_example_stacks() -> None:
    assert {"dev", "staging"} <= set(STACKS), STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_stack_renders(stack: str, validated: Validated) -> None:
    """The render command works for the stack and writes one folder per host of the spec."""
    spec = read_stack(stack).spec(offline=True)  # raises ConfigError naming the key if not
    assert stack not in validated.render_errors, validated.render_errors[stack]
    rendered_hosts = {h for s, h in validated.trees if s == stack}
    assert rendered_hosts == {h.name for h in spec.plan.hosts}


@pytest.mark.parametrize(("stack", "host", "check"), _plan())
def test_rendered_file_passes_its_validator(
    stack: str, host: str, check: str, validated: Validated
) -> None:
    """One validator on one host's rendered files: it must accept them without a word."""
    assert (stack, host) in validated.trees, f"{stack}/{host} was not rendered"
    assert_no_problems(validated.problems[(stack, host, check)])


@pytest.mark.parametrize(("stack", "host"), _web_hosts())
def test_app_serves_root_test_and_health(stack: str, host: str, validated: Validated) -> None:
    """The tutorial's endpoints and the health check HAProxy uses, through FastAPI's TestClient."""
    from fastapi.testclient import TestClient

    spec = read_stack(stack).spec(offline=True)
    tree = validated.trees[(stack, host)]
    app = load_app(tree.path_of(f"{PATHS.app_dir}/main.py"), host)
    with TestClient(app) as client:
        root = client.get("/")
        test = client.get("/test")
        health = client.get(spec.haproxy.health_check_path)
    assert (root.status_code, root.json()) == (200, {"message": f"Hello from {host}"})
    assert (test.status_code, test.json()) == (200, {"message": f"This is a test page from {host}"})
    assert (health.status_code, health.json()) == (200, {"status": "ok", "host": host})


# ---- the validators themselves ------------------------------------------------------------------


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_validator_tool_is_installed(tool: str) -> None:
    """Each tool is here; if not, the failure names the Debian package that brings it."""
    which(tool)  # raises ToolMissingError: "missing nginx: apt-get install ... nginx"


def test_a_missing_tool_fails_and_names_its_package(
    dev_with_key: LabSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No tool on PATH: the check fails (it does not pass or skip) and says what to install."""
    tree = render_to_tree(dev_with_key, tmp_path / "out")["lb-1"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(validate_module, "_SBIN", ())
    problems = run_check(CHECKS_BY_NAME["haproxy"], tree)
    with pytest.raises(AssertionError) as failure:
        assert_no_problems(problems)
    assert "missing haproxy: apt-get install --no-install-recommends haproxy" in str(failure.value)


def test_known_cloud_config_keys_come_from_cloud_inits_schema() -> None:
    keys, _patterns = cloud_config_keys()
    assert cloud_config_schema_path().name == "schema-cloud-config-v1.json"
    assert {"write_files", "runcmd", "users", "packages", "hostname", "manage_etc_hosts"} <= keys
    assert "write_file" not in keys
    assert len(keys) > 50  # every cc_* module's keys, not a hand list


def test_validate_tree_proves_a_lab_with_an_ssh_key(dev_with_key: LabSpec, tmp_path: Path) -> None:
    """What ``render --check`` runs: with a key set (see the cloud-init-schema failures without
    one), every file of the dev lab passes; ``hosts`` limits it to the hosts just rendered."""
    render_to_tree(dev_with_key, tmp_path)
    (tmp_path / "stale-host").mkdir()  # a folder without user-data is no host
    assert_no_problems(validate_tree(tmp_path))
    (nothing,) = validate_tree(tmp_path, hosts=["web-9"])
    assert "no host folder" in nothing.message


def test_fast_detection_passes_keepalived_and_nft(tmp_path: Path) -> None:
    """BFD between the LBs: keepalived --config-test takes the stanza, nft the rule for BFD."""
    config = read_stack("dev")
    values = {**config.values, "sshPublicKeys": [TEST_SSH_KEY], "vrrpFastDetection": True}
    fast = dataclasses.replace(config, values=values).spec(offline=True)
    trees = render_to_tree(fast, tmp_path)
    assert_no_problems(validate_tree(tmp_path))
    conf = trees["lb-1"].path_of("/etc/keepalived/keepalived.conf").read_text(encoding="utf-8")
    assert "vrrp_down_timer_adverts 1" in conf and "bfd_instance BFD_lb-2" in conf
    assert "BFD_lb-2 weight -80 reverse" in conf  # priority 150, to 230 while BFD is down
    assert f"vrrp_startup_delay {fast.vrrp.startup_delay_s}" in conf
    nft = trees["lb-1"].path_of("/etc/nftables.conf").read_text(encoding="utf-8")
    (bfd,) = [line for line in nft.splitlines() if "3784" in line]
    assert "ip saddr 10.0.1.12 ip daddr 10.0.1.11" in bfd  # from lb-2 to lb-1, nobody else


def test_keepalived_that_polls_for_haproxy_passes_its_config_test(tmp_path: Path) -> None:
    """Where no process events reach Keepalived (a namespace lab inside a PID namespace of its
    own), it polls for HAProxy with pgrep instead: keepalived --config-test takes that too."""
    config = read_stack("dev")
    values = {**config.values, "sshPublicKeys": [TEST_SSH_KEY]}
    spec = dataclasses.replace(config, values=values).spec(offline=True)
    polling = RenderTarget(process_events=False)
    lbs = spec.plan.hosts_with_role(Role.LB)
    trees = write_hosts({h.name: render_host(spec, h, polling) for h in lbs}, tmp_path)
    assert_no_problems(validate_tree(tmp_path))
    conf = trees["lb-1"].path_of(PATHS.keepalived_conf).read_text(encoding="utf-8")
    assert 'pgrep -x --runstates R,S,D,T,t haproxy"' in conf
    assert "track_script {" in conf and "track_process" not in conf


def test_three_lbs_with_fast_detection_pass_keepalived_and_nft(tmp_path: Path) -> None:
    """staging's three LBs: each sends adverts to both peers, runs BFD to both, lets both in."""
    config = read_stack("staging")
    values = {**config.values, "sshPublicKeys": [TEST_SSH_KEY], "vrrpFastDetection": True}
    values["vrrpAdvertIntervalMs"] = max(values["vrrpAdvertIntervalMs"], 40)
    fast = dataclasses.replace(config, values=values).spec(offline=True)
    trees = render_to_tree(fast, tmp_path)
    assert_no_problems(validate_tree(tmp_path))
    member = fast.plan.vrrp_member("lb-2")
    conf = trees["lb-2"].path_of("/etc/keepalived/keepalived.conf").read_text(encoding="utf-8")
    for peer, name in zip(member.peers, ("lb-1", "lb-3"), strict=True):
        assert f"neighbor_ip {peer}" in conf and f"BFD_{name} weight -40 reverse" in conf
    unicast = conf.split("unicast_peer {", 1)[1].split("}", 1)[0].split()
    assert unicast == [str(p) for p in member.peers]
    nft = trees["lb-2"].path_of("/etc/nftables.conf").read_text(encoding="utf-8")
    peers = "{ " + ", ".join(str(p) for p in member.peers) + " }"
    (vrrp,) = [line for line in nft.splitlines() if "protocol vrrp" in line]
    (bfd,) = [line for line in nft.splitlines() if "3784" in line]
    assert f"ip saddr {peers} ip protocol vrrp" in vrrp
    assert f"ip saddr {peers} ip daddr {member.src_ip}" in bfd


# ---- a broken template fails with the validator's own message -----------------------------------


@pytest.fixture(scope="module")
def dev_with_key() -> LabSpec:
    """The dev stack with an SSH key (a lab without one has no way in; see the report)."""
    config = read_stack("dev")
    values = {**config.values, "sshPublicKeys": [TEST_SSH_KEY]}
    return dataclasses.replace(config, values=values).spec(offline=True)


@pytest.fixture
def overlay_template(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., None]]:
    """Break one template in a temp copy of cloud-init/ and make the renderer read the copy."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, copy)

    def _break(template: str, old: str, new: str) -> None:
        path = copy / template
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{template} no longer contains {old!r}: update this test"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        # overlay(): the renderer's own environment (StrictUndefined, ...) with another loader.
        env = render_module._environment().overlay(loader=jinja2.FileSystemLoader(copy))
        monkeypatch.setattr(render_module, "_environment", lambda: env)

    yield _break


def _break_user_data(extra: dict[str, Any]) -> Callable[[pytest.MonkeyPatch], None]:
    def _patch(monkeypatch: pytest.MonkeyPatch) -> None:
        original = render_module.user_data
        monkeypatch.setattr(
            render_module, "user_data", lambda *a, **k: {**original(*a, **k), **extra}
        )

    return _patch


def _break_address(monkeypatch: pytest.MonkeyPatch) -> None:
    original = render_module.network_config

    def _broken(host: Any) -> dict[str, Any]:
        doc = original(host)
        first = next(iter(doc["ethernets"].values()))
        first["addresses"] = ["10.0.1.300/24"]
        return doc

    monkeypatch.setattr(render_module, "network_config", _broken)


#: (check, host, template, old text, new text, what the validator itself says about it)
TEMPLATE_BREAKS = [
    pytest.param(
        "haproxy", "lb-1", "haproxy.cfg.j2", "    option dontlognull\n",
        "    option dontlognull\n    bogus-keyword on\n",
        "unknown keyword 'bogus-keyword' in 'defaults' section", id="haproxy",
    ),
    pytest.param(
        "nginx", "web-1", "nginx-site.conf.j2", "    server_tokens off;\n",
        "    server_tokens off;\n    bogus_directive on;\n",
        'unknown directive "bogus_directive"', id="nginx",
    ),
    pytest.param(
        "keepalived", "lb-1", "keepalived.conf.j2", "    enable_script_security\n",
        "    enable_script_securty\n", "Unknown keyword 'enable_script_securty'", id="keepalived",
    ),
    pytest.param(
        "nftables", "lb-1", "nftables.nft.j2", "ct state invalid drop", "ct state invalid dorp",
        "Error: syntax error", id="nftables",
    ),
    pytest.param(
        "systemd-analyze", "web-1", "ha-web-app.service.j2", "RestartSec=1", "RestartSecs=1",
        "Unknown key 'RestartSecs' in section [Service]", id="systemd-analyze",
    ),
    pytest.param(
        "shellcheck", "web-1", "setup.sh.j2", 'log "done"', 'log "done" $1',
        "Double quote to prevent globbing and word splitting. [SC2086]", id="shellcheck",
    ),
    pytest.param(
        "sshd", "web-1", "sshd.conf.j2", "PermitRootLogin no", "PermitRootLogn no",
        "Bad configuration option: PermitRootLogn", id="sshd",
    ),
    pytest.param(
        "fastapi", "web-1", "app.py.j2", '@app.get("{{ haproxy.health_check_path }}")',
        '@app.post("{{ haproxy.health_check_path }}")', "GET /healthz -> 405", id="fastapi",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("check", "host", "template", "old", "new", "said"), TEMPLATE_BREAKS)
def test_broken_template_fails_with_the_validators_message(
    check: str,
    host: str,
    template: str,
    old: str,
    new: str,
    said: str,
    dev_with_key: LabSpec,
    overlay_template: Callable[..., None],
    tmp_path: Path,
) -> None:
    """The intact template passes; one broken line fails, and the failure quotes the tool."""
    intact = render_to_tree(dev_with_key, tmp_path / "intact")
    assert_no_problems(run_check(CHECKS_BY_NAME[check], intact[host]))

    overlay_template(template, old, new)
    broken = render_to_tree(dev_with_key, tmp_path / "broken")
    problems = run_check(CHECKS_BY_NAME[check], broken[host])
    with pytest.raises(AssertionError) as failure:
        assert_no_problems(problems)
    assert said in str(failure.value), problems_text(problems)


def test_sshd_would_run_key_only_without_root_on_every_host(
    dev_with_key: LabSpec, tmp_path: Path
) -> None:
    """What sshd itself makes of the rendered drop-in (``sshd -T``), not what the file says."""
    for name, tree in render_to_tree(dev_with_key, tmp_path).items():
        run, settings = sshd_effective_config(tree)
        assert settings, f"{name}: {run.output}"
        wanted = {
            "permitrootlogin": "no",
            "passwordauthentication": "no",
            "kbdinteractiveauthentication": "no",
            "pubkeyauthentication": "yes",
        }
        assert {k: settings[k] for k in wanted} == wanted, name


#: (check, how the renderer is broken, what the validator says)
RENDERER_BREAKS = [
    pytest.param(
        "cloud-init-schema", _break_user_data({"package_update": "yes"}),
        "package_update: 'yes' is not of type 'boolean'", id="cloud-init-schema",
    ),
    pytest.param(
        "cloud-config-keys", _break_user_data({"write_file": []}),
        "top-level key 'write_file' is not in cloud-init's schema", id="cloud-config-keys",
    ),
    pytest.param(
        "netplan", _break_address, "malformed address '10.0.1.300/24'", id="netplan",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("check", "breaker", "said"), RENDERER_BREAKS)
def test_broken_cloud_init_data_fails_with_the_validators_message(
    check: str,
    breaker: Callable[[pytest.MonkeyPatch], None],
    said: str,
    dev_with_key: LabSpec,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """user-data and network-config are built in Python, not templates: break the builder."""
    intact = render_to_tree(dev_with_key, tmp_path / "intact")
    assert_no_problems(run_check(CHECKS_BY_NAME[check], intact["lb-1"]))

    breaker(monkeypatch)
    broken = render_to_tree(dev_with_key, tmp_path / "broken")
    problems = run_check(CHECKS_BY_NAME[check], broken["lb-1"])
    with pytest.raises(AssertionError) as failure:
        assert_no_problems(problems)
    assert said in str(failure.value), problems_text(problems)


def test_nginx_check_needs_the_nodes_own_address(
    dev_with_key: LabSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Why the nginx check runs in a namespace with the host's addresses: ``nginx -t`` binds."""
    tree = render_to_tree(dev_with_key, tmp_path)["web-1"]
    address = str(dev_with_key.plan.host("web-1").leg(ZoneName.INTERNAL).address)
    # Same check, but the namespace gets no interfaces: nginx must then fail to bind the address.
    original = validate_module.in_namespaces
    monkeypatch.setattr(validate_module, "in_namespaces", lambda argv, **_: original(argv))
    problems = run_check(CHECKS_BY_NAME["nginx"], tree)
    assert f"bind() to {address}:80 failed" in problems_text(problems)
