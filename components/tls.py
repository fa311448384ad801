"""The one certificate every LB serves on 443, so a failover never changes what clients see."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from halab.model.spec import LabSpec


@dataclass(kw_only=True)
class LabCertificateArgs:
    """Where the certificate comes from: secret config when given, else generated once."""

    spec: LabSpec
    certificate: pulumi.Output[str] | None = None
    private_key: pulumi.Output[str] | None = None


class LabCertificate(pulumi.ComponentResource):
    """``pem`` (certificate then key) as a Pulumi secret.

    Without configured PEMs, a self-signed certificate is made once by a local openssl command
    and kept in the stack state as a secret. The registry's TLS provider would be the natural
    tool, but its Terraform provider cannot be built from the module proxy here; a one-time
    command does the same job and needs only openssl.
    """

    pem: pulumi.Output[str]

    def __init__(
        self, name: str, args: LabCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ha-web-lab:index:LabCertificate", name, None, opts)
        spec = args.spec
        if args.certificate is not None and args.private_key is not None:
            self.pem = pulumi.Output.secret(
                pulumi.Output.concat(args.certificate, "\n", args.private_key, "\n")
            )
        else:
            subject_alt = f"IP:{spec.public_address},IP:{spec.vip_address}"
            generated = command.local.Command(
                f"{name}-self-signed",
                # Create only: no update or delete step, so the certificate never changes
                # under the LBs unless the resource is replaced on purpose.
                create=(
                    "set -eu; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
                    "openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 "
                    f"-subj '/CN={spec.public_address}/O=ha-web-lab {spec.stack}' "
                    f"-addext 'subjectAltName={subject_alt}' "
                    '-keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null; '
                    'cat "$d/cert.pem" "$d/key.pem"'
                ),
                logging=command.local.Logging.NONE,
                triggers=[subject_alt],
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
            )
            self.pem = pulumi.Output.secret(generated.stdout.apply(lambda out: out + "\n"))
        self.register_outputs({"pem": self.pem})
