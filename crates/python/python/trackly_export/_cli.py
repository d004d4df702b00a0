"""The ``trackly-export`` console script: the Rust CLI, the same code as the cargo-built binary."""

from __future__ import annotations

import sys

from trackly_export._native import cli_main


def main() -> None:
    """Runs ``trackly-export`` with ``sys.argv`` and exits with its exit code."""
    sys.exit(cli_main(sys.argv))


if __name__ == "__main__":
    main()
