"""``python -m training …`` is the same as ``recsys-gql …`` (data fetch, train, …)."""

import sys

from recsys_gql.cli import main

sys.exit(main())
