"""The ``tritonsym`` command: ``tritonsym train`` (the main job), ``tritonsym sample MODEL``
(writing with a saved transformer), ``tritonsym summary net.json``, ``tritonsym --help``."""

from __future__ import annotations

import argparse
import sys

from . import sample, summary, train

COMMANDS = {"train": train, "sample": sample, "summary": summary}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tritonsym",
        description="MXNet's Symbol API on Triton kernels. Commands:",
        epilog="Run 'tritonsym <command> --help' for a command's options.")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, command in COMMANDS.items():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
