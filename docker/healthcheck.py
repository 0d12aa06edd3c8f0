#!/usr/bin/env python3
"""HEALTHCHECK of the recsys-gql image: exit 0 when ``/readyz`` answers 200, else 1.

``/readyz`` re-verifies the artifacts and asks the database, so a container whose database went
away or whose artifacts were damaged turns unhealthy. It asks the server on loopback, on
``$RECSYS_GQL_PORT`` (8000 in the image). Standard library only: it runs before anything else
is known to work.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 8.0


def main() -> int:
    """Probe ``/readyz`` once and report the answer on stdout (Docker keeps it)."""
    url = f"http://127.0.0.1:{os.environ.get('RECSYS_GQL_PORT', '8000')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            print(f"{url}: {response.status} {response.read(500).decode(errors='replace')}")
            return 0
    except urllib.error.HTTPError as exc:  # 503 with the problems in the body
        print(f"{url}: {exc.code} {exc.read(2000).decode(errors='replace')}")
    except OSError as exc:  # refused, timed out, ...
        print(f"{url}: {exc}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
