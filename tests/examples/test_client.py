"""examples/client.py, run as a user would run it, against a real server: it signs up, gets
its first list, rates, and prints the list the server pushes after the rating."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "client.py"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_client_example_signs_up_rates_and_prints_updates(api: Server) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--url", f"{api.url}/graphql", "--updates", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    signed, *updates = lines
    assert signed["event"] == "signed-up"
    assert signed["user"] > 0
    assert [u["event"] for u in updates] == ["update", "rated", "update"]
    first, rated, second = updates
    assert len(first["movies"]) == 5
    assert rated["movie"] == first["movies"][0]["id"]  # it rated its top recommendation
    assert rated["movie"] not in {m["id"] for m in second["movies"]}  # which then left the list
