"""momd: run MOM as a standalone program."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momd", description="Memory Overcommitment Manager daemon")
    parser.add_argument("-c", "--config-file", default="",
                        help="mom.conf to load (default: built-in defaults)")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
