"""The ``widenet`` console script: the command line of the Rust binary,
compiled into the native module and run in this process."""

import sys


def main() -> None:
    """Runs ``widenet`` with this process's arguments and exits with its status."""
    from widenet import _native

    sys.exit(_native.cli_main(["widenet", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
