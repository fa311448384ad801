"""The preview plan check: a scale-out is accepted, a replacement or a change in place refused."""

from __future__ import annotations

from typing import Any

from halab.e2e.plan import check_plan, check_steps


def _step(op: str, kind: str, name: str) -> dict[str, Any]:
    urn = f"urn:pulumi:e2e::ha-web-lab::ha-web-lab:index:HaWebLab$x${kind}::{name}"
    return {"op": op, "urn": urn, "newState": {"type": kind}}


DOMAIN = "libvirt:index/domain:Domain"
VOLUME = "libvirt:index/volume:Volume"
REMOTE = "command:remote:Command"


def test_plan_scale_out_is_accepted() -> None:
    preview = {
        "steps": [
            _step("same", DOMAIN, "lab-lbs-lb-1-domain"),
            _step("same", DOMAIN, "lab-web-web-1-domain"),
            _step("create", VOLUME, "lab-web-web-2-root"),
            _step("create", DOMAIN, "lab-web-web-2-domain"),
            _step("create", REMOTE, "lab-web-web-2-ready"),
            _step("replace", REMOTE, "lab-lbs-lb-1-ready"),
            _step("create-replacement", REMOTE, "lab-lbs-lb-2-ready"),
        ]
    }
    check = check_plan(preview, "web-2")
    assert check.ok, check.problems
    assert "lab-web-web-2-domain" in check.created
    assert check.replaced == ["lab-lbs-lb-1-ready", "lab-lbs-lb-2-ready"]
    assert check.ops[DOMAIN] == {"same": 2, "create": 1}
    assert check.to_json()["ok"] is True


def test_plan_replacing_a_domain_is_refused() -> None:
    preview = {
        "steps": [
            _step("create", DOMAIN, "lab-web-web-2-domain"),
            _step("replace", DOMAIN, "lab-lbs-lb-1-domain"),
            _step("delete", VOLUME, "lab-web-web-1-root"),
            _step("create", VOLUME, "lab-web-web-1-root"),
        ]
    }
    check = check_plan(preview, "web-2")
    assert not check.ok
    assert any("replace" in p and "lb-1" in p for p in check.problems)
    assert any("delete" in p and "web-1" in p for p in check.problems)
    assert any("no new host" in p for p in check.problems)


def test_plan_without_the_new_host_is_refused() -> None:
    check = check_plan({"steps": [_step("same", DOMAIN, "lab-web-web-1-domain")]}, "web-2")
    assert check.problems == ["nothing is created for web-2"]
    # web-20 is not web-2.
    check = check_plan({"steps": [_step("create", DOMAIN, "lab-web-web-20-domain")]}, "web-2")
    assert not check.ok


def _steps(*steps: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    return [(op, _step(op, kind, name)["urn"], kind) for op, kind, name in steps]


SEED = "libvirt:index/cloudInitDisk:CloudInitDisk"


def test_replacing_one_vm_is_accepted_only_for_that_vm() -> None:
    steps = _steps(
        ("same", DOMAIN, "lab-web-web-2-domain"),
        ("delete-replaced", DOMAIN, "lab-web-web-1-domain"),
        ("replace", DOMAIN, "lab-web-web-1-domain"),
        ("create-replacement", DOMAIN, "lab-web-web-1-domain"),
        ("replace", SEED, "lab-web-web-1-seed"),
        ("replace", VOLUME, "lab-web-web-1-root"),
        ("replace", REMOTE, "lab-web-web-1-ready"),
        ("update", REMOTE, "lab-lb-lb-1-ready"),
    )
    check = check_steps(steps, replaced_hosts=["web-1"])
    assert check.ok, check.problems
    assert check.replaced == [
        "lab-web-web-1-domain", "lab-web-web-1-seed", "lab-web-web-1-root", "lab-web-web-1-ready"
    ]  # fmt: skip
    # The same plan for another host's change is refused: web-1 is not that host.
    other = check_steps(steps, replaced_hosts=["web-2"])
    assert any("lab-web-web-1-domain" in p for p in other.problems)
    assert "web-2's domain is not replaced" in other.problems


def test_an_update_in_place_of_a_domain_is_refused_even_for_the_host() -> None:
    # The provider's in-place update is what broke a new seed (a deleted ISO): never accept it.
    steps = _steps(("update", DOMAIN, "lab-web-web-1-domain"))
    check = check_steps(steps, replaced_hosts=["web-1"])
    assert "update of libvirt:index/domain:Domain lab-web-web-1-domain" in check.problems
    assert "web-1's domain is not replaced" in check.problems
