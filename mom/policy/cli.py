"""mom-policy: check and evaluate policy files (placeholder)."""
import argparse
import sys


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="mom-policy").parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
