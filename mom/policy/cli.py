"""mom-policy: check policy files, try them on made-up statistics, or play.

    mom-policy check FILE...
    mom-policy eval --host JSON_OR_FILE --guest JSON_OR_FILE [--guest ...] FILE...
    mom-policy repl [--host JSON_OR_FILE] [--guest JSON_OR_FILE ...] [FILE...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from mom.policy.compiler import compile_policy
from mom.policy.dry_run import build_entities, dry_run
from mom.policy.errors import PolicyError
from mom.policy.evaluator import Evaluator
from mom.policy.lint import guest_names, undeclared_fields
from mom.policy.reader import Node, read
from mom.policy.runtime import show


def _where(path: str, error: PolicyError) -> str:
    """``FILE:LINE:COL: message``, the shape editors and CI logs understand."""
    message = error.reason.removesuffix(" opened") + (f" ({error.hint})" if error.hint else "")
    if error.line is None:
        return f"{path}: {message}"
    return f"{path}:{error.line}:{error.column or 1}: {message}"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _policy_name(path: str, taken: dict[str, str]) -> str:
    name = os.path.splitext(os.path.basename(path))[0]
    return name if name not in taken else path


def _load_json(value: str) -> Any:
    """A JSON document given inline or as the name of a file holding it."""
    text = value if value.lstrip()[:1] in ("{", "[") else _read(value)
    return json.loads(text)


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    failed = False
    checked: list[tuple[str, list[PolicyError], list[Node]]] = []
    for path in args.files:
        try:
            text = _read(path)
            program = compile_policy(text, os.path.basename(path))
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
            failed = True
            continue
        except UnicodeDecodeError as exc:
            print(f"{path}: not UTF-8 text: {exc}", file=out)
            failed = True
            continue
        except PolicyError as error:
            print(_where(path, error), file=out)
            failed = True
            continue
        # --strict also checks entity statistics, which needs the text's tree.
        checked.append((path, program.warnings, read(text) if args.strict else []))
    guests = set().union(*(guest_names(nodes) for _, _, nodes in checked))
    for path, warnings, nodes in checked:
        if args.strict:
            warnings = sorted([*warnings, *undeclared_fields(nodes, guests)],
                              key=lambda w: (w.line or 0, w.column or 0))
        for warning in warnings:
            print(_where(path, warning).replace(": ", ": warning: ", 1), file=out)
            failed = failed or args.strict
    return 1 if failed else 0


def _inputs(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    host = _load_json(args.host) if args.host else {}
    guests = [_load_json(g) for g in args.guest or []]
    return host, guests


def _policies(files: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    policies: dict[str, str] = {}
    paths: dict[str, str] = {}
    for path in files:
        name = _policy_name(path, policies)
        policies[name] = _read(path)
        paths[name] = path
    return policies, paths


def cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    try:
        host, guests = _inputs(args)
        policies, paths = _policies(args.files)
    except (OSError, ValueError) as exc:
        print(f"mom-policy: {exc}", file=sys.stderr)
        return 2
    try:
        result = dry_run(policies, host, guests)
    except PolicyError as error:
        print(_where(paths.get(error.policy or "", error.policy or "?"), error), file=sys.stderr)
        return 1
    except TypeError as exc:   # statistics of the wrong shape
        print(f"mom-policy: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str), file=out)
    return 0


def _complete(text: str) -> bool:
    """Whether ``text`` is a whole input, or the user is still typing a form."""
    try:
        compile_policy(text)
    except PolicyError as error:
        return not error.reason.startswith(("unclosed '", "unclosed string"))
    return True


def cmd_repl(args: argparse.Namespace, out: TextIO) -> int:
    try:
        host, guests = _inputs(args)
        policies, _ = _policies(args.files)
    except (OSError, ValueError) as exc:
        print(f"mom-policy: {exc}", file=sys.stderr)
        return 2
    evaluator = Evaluator("repl")
    host_entity, guest_entities = build_entities(host, guests)
    evaluator.bind("Host", host_entity)
    evaluator.bind("Guests", guest_entities)
    for name in sorted(policies):
        try:
            evaluator.run(policies[name], name)
        except PolicyError as error:
            print(error, file=out)
    interactive = sys.stdin.isatty()
    buffer = ""
    while True:
        try:
            line = input("... " if buffer else "mom> ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if not interactive and not line:
            return 0
        buffer += line + ("\n" if interactive else "")
        if not buffer.strip() or not _complete(buffer):
            continue
        try:
            for value in evaluator.run(buffer):
                print(show(value, 1000), file=out)
        except PolicyError as error:
            print(error, file=out)
        buffer = ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mom-policy", description="Check and try MOM policy files.")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="check that policy files parse",
                           description="Exit 0 when every file parses; otherwise print "
                                       "FILE:LINE:COL: message for each error and exit 1.")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--strict", action="store_true",
                       help="also fail on warnings (mistakes that only fail when run), "
                            "and warn about entity statistics no built-in collector "
                            "declares")
    check.set_defaults(func=cmd_check)

    for command, helptext in (("eval", "print the controls the policies choose, as JSON"),
                              ("repl", "evaluate expressions interactively")):
        p = sub.add_parser(command, help=helptext, description=helptext)
        p.add_argument("--host", metavar="JSON_OR_FILE",
                       help="host statistics: a dict, or a list of dicts (oldest first)")
        p.add_argument("--guest", metavar="JSON_OR_FILE", action="append",
                       help="one guest's statistics (may carry name, uuid, pid); repeatable")
        p.add_argument("files", nargs="+" if command == "eval" else "*", metavar="FILE",
                       help="policy files, evaluated in sorted-name order")
    sub.choices["eval"].set_defaults(func=cmd_eval)
    sub.choices["repl"].set_defaults(func=cmd_repl)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
