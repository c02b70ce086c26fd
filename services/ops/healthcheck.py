"""`python -m services.ops.healthcheck URL`: exit 0 when URL answers 2xx, else 1.

Container images carry no curl or wget; this is the probe Docker health checks run.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def probe(url: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """Whether `url` answers with a 2xx status, and a one-line explanation."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= response.status < 300, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m services.ops.healthcheck URL", file=sys.stderr)
        return 2
    healthy, message = probe(args[0])
    print(message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
