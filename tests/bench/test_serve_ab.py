"""``bench.serve_ab``: how it reads a variant and sums up the paired runs."""

from __future__ import annotations

import argparse

import pytest

from bench.serve_ab import label, medians, parse_variant


def test_a_variant_is_one_or_more_settings_and_a_dash_is_the_defaults() -> None:
    assert parse_variant("RECSYS_GQL_INLINE_ENGINE_MS=10") == {"RECSYS_GQL_INLINE_ENGINE_MS": "10"}
    both = parse_variant("RECSYS_GQL_ENGINE_THREADS=2,RECSYS_GQL_EVENT_LOOP=uvloop")
    assert both == {"RECSYS_GQL_ENGINE_THREADS": "2", "RECSYS_GQL_EVENT_LOOP": "uvloop"}
    assert parse_variant("-") == {}
    assert label({}) == "(defaults)"


@pytest.mark.parametrize("text", ["INLINE=10", "RECSYS_GQL_INLINE_ENGINE_MS", "PATH=/tmp"])
def test_anything_but_a_recsys_setting_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="RECSYS_GQL_NAME=value"):
        parse_variant(text)


def _run(variant: dict[str, str], rate: float, ceiling: float) -> dict[str, object]:
    def op(req_per_s: float) -> dict[str, float]:
        figures = {"req_per_s": req_per_s, "p50_ms": 1000 / req_per_s, "p99_ms": 2000 / req_per_s}
        return figures | {"p99_9_ms": 3000 / req_per_s, "share_of_typename": req_per_s / ceiling}

    return {"variant": variant, "operations": {"typename": op(ceiling), "recs": op(rate)}}


def test_medians_are_per_variant_and_per_operation() -> None:
    a, b = {"RECSYS_GQL_INLINE_ENGINE_MS": "1"}, {"RECSYS_GQL_INLINE_ENGINE_MS": "10"}
    runs = [_run(a, 100, 1000), _run(b, 150, 1000), _run(a, 90, 900), _run(b, 200, 800),
            _run(a, 120, 600), _run(b, 160, 1000)]  # fmt: skip
    assert medians(runs, a)["recs"]["req_per_s"] == 100
    assert medians(runs, b)["recs"]["req_per_s"] == 160
    assert medians(runs, a)["recs"]["share_of_typename"] == 0.1  # 0.1, 0.1, 0.2
    assert medians(runs, b)["recs"]["share_of_typename"] == 0.16  # 0.15, 0.25, 0.16
    assert medians(runs, b)["typename"]["req_per_s"] == 1000
