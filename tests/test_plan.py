"""`vidsift plan`: a fleet's needs, the quotas it meets, and its monthly cost from the same
price table as the run estimate (vidsift/report/prices.json)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from vidsift.cli.commands import main
from vidsift.report import plan as planning
from vidsift.report.cost import default_prices


def needs(p: planning.Plan) -> dict[str, planning.Need]:
    return {n.what: n for n in p.needs}


def test_a_small_fleet_fits_the_defaults() -> None:
    p = planning.plan(planning.Fleet(cameras=10))
    assert not [n.what for n in p.needs if n.over]
    # 10 cameras x 1 fps x peak 2 = 20 frames/s: people rows per second, and 2 endpoint requests in flight.
    assert needs(p)["Firehose records per second (busiest stream)"].value == pytest.approx(20)
    assert needs(p)["SageMaker endpoint concurrency"].value == pytest.approx(20 * planning.ENDPOINT_SECONDS_PER_FRAME)


def test_a_large_fleet_names_the_quotas_to_raise() -> None:
    over = {n.what for n in planning.plan(planning.Fleet(cameras=1000)).needs if n.over}
    assert {"Rekognition calls per second (DetectFaces + searches)", "SageMaker endpoint concurrency",
            "Lambda detect_people concurrency", "Firehose records per second (busiest stream)"} <= over
    assert "DynamoDB writes (tracking + idempotency tables)" not in over


def test_costs_scale_with_the_fleet_and_come_from_the_price_table() -> None:
    small, large = (planning.plan(planning.Fleet(cameras=n)) for n in (10, 100))
    assert large.total_usd == pytest.approx(10 * small.total_usd)
    f = planning.Fleet(cameras=10, hours_per_day=10, people_per_minute=1.5)
    calls = 10 * 1.5 * 60 * 10 * planning.DAYS_PER_MONTH
    prices = default_prices()
    assert planning.plan(f).monthly_usd["Rekognition"] == pytest.approx(
        calls * prices["rekognition_detect_faces_image"].usd)
    doubled = replace(prices, items={**prices.items, "rekognition_detect_faces_image": replace(
        prices["rekognition_detect_faces_image"], usd=2 * prices["rekognition_detect_faces_image"].usd)})
    assert planning.plan(f, doubled).monthly_usd["Rekognition"] == pytest.approx(2 * calls * 0.001)


def test_the_rekognition_budget_is_the_limit() -> None:
    f = planning.Fleet(cameras=100)
    assert needs(planning.plan(f))["Rekognition calls per second (DetectFaces + searches)"].over
    assert not needs(planning.plan(f, rekognition_tps=50))["Rekognition calls per second (DetectFaces + searches)"].over


def test_the_command_prints_data_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--cameras", "100", "--hours", "8", "--format", "json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["fleet"]["cameras"] == 100 and doc["monthly_usd"]["total"] > 0 and doc["assumptions"]
    assert main(["plan", "--cameras", "0"]) == 2
