"""The command line: ``render`` works anywhere; ``lab``, ``bench`` and ``libvirtd`` need root
(namespaces), and so does ``image`` when it builds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from halab.model.errors import ConfigError
from halab.model.stackconfig import stack_spec
from halab.render.hosts import render_all, write_tree


def _render(args: argparse.Namespace) -> int:
    spec = stack_spec(args.stack, Path(args.project_dir))
    rendered = render_all(spec)
    written = write_tree(rendered, Path(args.out))
    for name, host in rendered.items():
        roles = host.host.role.value
        print(f"{name:<10} {roles:<5} {len(host.files) + 3:>2} files -> {Path(args.out) / name}")
    print(f"{len(written)} files written; secrets are placeholders (Pulumi fills them in).")
    if args.check:
        from halab.render.validate import validate_tree

        problems = validate_tree(Path(args.out), hosts=rendered)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problems" if problems else "every file passed its validator")
        return 1 if problems else 0
    return 0


def _picture(args: argparse.Namespace) -> int:
    from halab.render.picture import write_picture

    spec = stack_spec(args.stack, Path(args.project_dir))
    out = Path(args.out or f"reports/{args.stack}")
    holder = args.vip_holder
    if args.ask and holder is None:
        from halab.e2e.check import default_key
        from halab.vmlab.lab import vip_holder

        key = Path(args.ssh_key) if args.ssh_key else default_key()
        holder = vip_holder(spec, key, out / ".work")
    try:
        path = write_picture(spec, out, vip_holder=holder)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _up(args: argparse.Namespace) -> int:
    from halab import up

    return up.up_or_down(args.command, args.stack)


def _pulumi(args: argparse.Namespace) -> int:
    from halab import up

    return up.exec_pulumi(args.stack, args.args)


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand (also used by the tests and the README)."""
    parser = argparse.ArgumentParser(
        prog="python -m halab",
        description=(
            "ha-web-lab tools. Reads Pulumi.yaml and Pulumi.<stack>.yaml exactly as Pulumi "
            "does, without the Pulumi CLI."
        ),
    )
    parser.add_argument(
        "--project-dir",
        default=str(Path(__file__).resolve().parent.parent),
        help="folder with Pulumi.yaml (default: this checkout)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = sub.add_parser(
        "render",
        help="render every host's files for a stack into a folder",
        description=(
            "Render every host's cloud-init user-data, network-config and meta-data, and each "
            "config file the user-data writes (under files/<real path>), one folder per host. "
            "Secrets the Pulumi CLI would decrypt (FortiGate token, TLS key) are written as "
            "clearly marked placeholders."
        ),
    )
    render.add_argument("--stack", default="dev", help="stack name (default: dev)")
    render.add_argument("--out", default="build/dev", help="output folder (default: build/dev)")
    render.add_argument(
        "--check",
        action="store_true",
        help="then prove every file with the tool that reads it (scripts/apt-packages.txt)",
    )
    render.set_defaults(func=_render)

    picture = sub.add_parser(
        "picture",
        help="draw the lab of a stack (zones, hosts, addresses, VIP, edge) as SVG",
        description=(
            "Draw the lab from the stack's spec with Graphviz: lab.svg and lab.dot in the "
            "folder. --ask asks the running lab's LBs (over SSH) who holds the VIP."
        ),
    )
    picture.add_argument("--stack", default="local", help="stack name (default: local)")
    picture.add_argument("--out", default=None, help="folder (default: reports/STACK)")
    picture.add_argument("--vip-holder", default=None, help="mark this LB as the VIP's holder")
    picture.add_argument("--ask", action="store_true", help="ask the running lab who holds it")
    picture.add_argument("--ssh-key", default=None, help="for --ask (default ~/.ssh/id_ed25519)")
    picture.set_defaults(func=_picture)

    for action, text in (
        ("up", "a working lab from nothing: libvirtd, KVM probe, image, key, pulumi up"),
        ("down", "pulumi destroy, then the project's libvirtd if the stack used it"),
    ):
        command = sub.add_parser(action, help=text, description=text)
        command.add_argument("--stack", default="local", help="stack name (default: local)")
        command.set_defaults(func=_up)

    pulumi = sub.add_parser(
        "pulumi",
        help="a Pulumi command on a stack, with the project's environment and engine",
        description="`pulumi ARGS --stack STACK` in the project folder: your backend "
        "(PULUMI_BACKEND_URL or `pulumi login`), else a local file backend; your passphrase, "
        "else the project's passphrase file; the built CLI and the mirror's plugins when there "
        "is no CLI on PATH. E.g. `python -m halab pulumi local preview`.",
    )
    pulumi.add_argument("stack", help="stack name (made when new)")
    pulumi.add_argument("args", nargs=argparse.REMAINDER, help="the Pulumi command and its flags")
    pulumi.set_defaults(func=_pulumi)

    try:
        from halab.bench.cli import add_drill_commands
        from halab.nslab.cli import add_lab_commands
    except ImportError:  # the local lab is optional for the render command
        pass
    else:
        add_drill_commands(add_lab_commands(sub))
    from halab.e2e.check import add_check_command
    from halab.e2e.launch import add_e2e_command
    from halab.fortigate.server import add_fortigate_command
    from halab.machine.image import add_image_command
    from halab.machine.libvirtd import add_libvirtd_command
    from halab.render.docs import add_docs_command
    from halab.vmlab.reclaim import add_reclaim_command

    add_check_command(sub)
    add_docs_command(sub)
    add_e2e_command(sub)
    add_reclaim_command(sub)
    add_fortigate_command(sub)
    add_libvirtd_command(sub)
    add_image_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad config is one line on stderr and exit code 2, never a traceback."""
    parser = build_parser()
    # A command that hands its arguments to another program (``e2e``: the run) sets
    # ``passes_on``; every other command refuses what it does not know, as parse_args does.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_on", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return 2
