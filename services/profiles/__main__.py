"""`python -m services.profiles`: serve the profile API with its consumers.

`python -m services.profiles consume` runs the consumer alone (no HTTP), e.g. to scale the
consumer group out; `replay` and `show` are the same commands as `touchpoint replay` and
`touchpoint profiles show`.
"""

import argparse
import sys

from services.profiles.cli import register
from services.web.serve import serve


def main(argv: list[str]) -> int:
    if not argv:
        serve("services.profiles.app:create_app", port_setting="profile_port")
        return 0
    parser = argparse.ArgumentParser(prog="python -m services.profiles")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(argv if argv[0] in ("replay", "profiles") else ["profiles", *argv])
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
