"""Secrets stay Pulumi secrets end to end: config, resource inputs and outputs."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from tests.conftest import FAKE_PEM, TEST_PRIVATE_KEY, TEST_TOKEN, Graph

Program = Callable[..., Graph]


def test_fortios_token_is_secret_in_the_provider(program: Program) -> None:
    graph = program("dev")
    (provider,) = graph.of_type("pulumi:providers:fortios")
    assert provider.inputs["token"] == TEST_TOKEN
    assert "token" in provider.secret_inputs


def test_lb_seed_with_the_tls_key_is_secret(program: Program) -> None:
    """Both LBs carry the key (secret) and the very same certificate, so a failover keeps it."""
    graph = program("dev")
    pems = []
    for lb in ("lab-lb-lb-1", "lab-lb-lb-2"):
        seed = graph.named(f"{lb}-seed")
        assert "userData" in seed.secret_inputs
        # Named after a digest of the network config, which is no secret: names stay plain.
        assert "name" not in seed.secret_inputs
        files = {f["path"]: f for f in yaml.safe_load(seed.inputs["userData"])["write_files"]}
        pem = files["/etc/haproxy/certs/ha-web-lab.pem"]
        assert "PRIVATE KEY" in pem["content"] and pem["permissions"] == "0600"
        pems.append(pem["content"])
    assert pems[0] == pems[1]


def test_web_seeds_carry_no_secret(program: Program) -> None:
    graph = program("dev")
    seed = graph.named("lab-web-web-1-seed")
    assert not seed.secret_inputs
    assert "PRIVATE KEY" not in seed.inputs["userData"]


def test_generated_certificate_is_a_secret_output(program: Program) -> None:
    graph = program("dev")
    (cmd,) = graph.of_type("command:local:Command")[:1]
    assert cmd.name == "lab-tls-self-signed"
    assert "openssl req -x509" in cmd.inputs["create"]
    assert "subjectAltName=IP:203.0.113.10,IP:10.0.1.100" in cmd.inputs["create"]
    # Its stdout (certificate and key) is marked secret, and nothing is logged.
    assert cmd.inputs["logging"] == "none"


def test_configured_certificate_replaces_the_generated_one(program: Program) -> None:
    graph = program(
        "dev",
        tlsCertificate="-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----",
        tlsPrivateKey="-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----",
    )
    assert graph.named("lab-tls").type == "ha-web-lab:index:LabCertificate"
    assert not [
        r for r in graph.of_type("command:local:Command") if r.name == "lab-tls-self-signed"
    ]
    user = yaml.safe_load(graph.named("lab-lb-lb-1-seed").inputs["userData"])
    pem = next(f["content"] for f in user["write_files"] if f["path"].endswith(".pem"))
    assert pem.startswith("-----BEGIN CERTIFICATE-----\nA\n") and "PRIVATE KEY-----\nB\n" in pem
    assert FAKE_PEM not in pem


def test_ssh_private_key_is_secret_in_every_connection(program: Program) -> None:
    graph = program("staging")
    for gate in graph.of_type("command:remote:Command"):
        assert gate.inputs["connection"]["privateKey"] == TEST_PRIVATE_KEY
        assert "connection" in gate.secret_inputs
