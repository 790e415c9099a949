"""The API's settings from the environment, the token buckets behind its rate limit, and its Prometheus text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.limits import TokenBuckets
from api.settings import ApiSettings, RateLimit, parse_rate_limit
from api.telemetry import RequestMetrics, exposition, render_flow
from operators.arbitrage import ArbitrageRules


def test_defaults_with_nothing_set():
    settings = ApiSettings.from_env({})
    assert settings == ApiSettings()
    assert (settings.host, settings.port, settings.api_key, settings.cors_origins) == ("127.0.0.1", 8000, None, ())
    assert settings.rate_limit == RateLimit(100, 1.0) and settings.max_body_bytes == 1 << 20
    assert settings.store_url is None and settings.models_dir is None
    assert settings.arbitrage == ArbitrageRules()


def test_every_variable_is_read():
    settings = ApiSettings.from_env(
        {
            "QF_STORE": "questdb://db",
            "QF_API_HOST": "0.0.0.0",
            "QF_API_PORT": "9001",
            "QF_API_KEY": "k",
            "QF_API_CORS_ORIGINS": "https://a.example, https://b.example,",
            "QF_API_RATE_LIMIT": "600/min",
            "QF_API_MAX_BODY_BYTES": "2048",
            "QF_MODELS_DIR": "/srv/models",
            "QF_ARB_TAKER_FEES_BPS": "binance=7.5",
            "QF_ARB_ALIASES": "USDC=USDC",
        }
    )
    assert settings.store_url == "questdb://db" and (settings.host, settings.port) == ("0.0.0.0", 9001)
    assert settings.api_key == "k" and settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.rate_limit == RateLimit(600, 60.0) and settings.max_body_bytes == 2048
    assert settings.models_dir == Path("/srv/models")
    assert settings.arbitrage.taker_fees_bps["binance"] == 7.5
    assert settings.arbitrage.asset("binance:BTCUSDC") == "BTC/USDC"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QF_API_PORT", "80000", "QF_API_PORT='80000': expected a whole number from 1 to 65535"),
        ("QF_API_PORT", "http", "QF_API_PORT='http'"),
        ("QF_API_MAX_BODY_BYTES", "0", "from 1 to"),
        ("QF_API_RATE_LIMIT", "100", "expected REQUESTS/PERIOD"),
        ("QF_API_RATE_LIMIT", "100/fortnight", "expected REQUESTS/PERIOD"),
        ("QF_API_RATE_LIMIT", "0/s", "expected REQUESTS/PERIOD"),
        ("QF_ARB_TAKER_FEES_BPS", "binance=lots", "QF_ARB_TAKER_FEES_BPS / QF_ARB_ALIASES: taker fees: binance='lots'"),
    ],
)
def test_a_malformed_variable_is_an_error_naming_it(name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ApiSettings.from_env({name: value})


@pytest.mark.parametrize(
    ("text", "limit"),
    [("100/s", RateLimit(100, 1.0)), (" 6000 / min ", RateLimit(6000, 60.0)), ("5/hour", RateLimit(5, 3600.0))],
)
def test_rate_limits(text, limit):
    assert parse_rate_limit(text) == limit
    assert parse_rate_limit("off") is None and parse_rate_limit("0") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_one_request_per_refill():
    clock = Clock()
    buckets = TokenBuckets(RateLimit(4, 2.0), clock)  # 4 a burst, refilled at 2 a second
    assert [buckets.take("a") for _ in range(4)] == [0.0] * 4
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back in half a second
    assert buckets.take("b") == 0.0  # clients have buckets of their own
    clock.now += 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") == pytest.approx(0.5)
    clock.now += 100
    assert [buckets.take("a") for _ in range(5)][-1] > 0  # refilled to the burst size, no more


def test_the_least_recently_seen_clients_are_forgotten_first(monkeypatch):
    monkeypatch.setattr("api.limits.MAX_CLIENTS", 2)
    buckets = TokenBuckets(RateLimit(1, 60.0), Clock())
    buckets.take("a")
    buckets.take("b")
    buckets.take("a")  # refused, but seen: b is now the oldest
    buckets.take("c")
    assert list(buckets._buckets) == ["a", "c"]


def samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}


def test_request_histograms_are_cumulative_with_inf_equal_to_the_count():
    metrics = RequestMetrics()
    for seconds in (0.0002, 0.0007, 0.003, 0.003, 42.0):
        metrics.observe("/v1/book/{instrument:path}", "GET", 200, seconds)
    metrics.observe("/v1/book/{instrument:path}", "GET", 404, 0.0001)
    got = samples(exposition(metrics.render()))
    route = 'route="/v1/book/{instrument:path}",method="GET"'
    assert got[f'qf_api_requests_total{{{route},status="200"}}'] == 5
    assert got[f'qf_api_requests_total{{{route},status="404"}}'] == 1
    assert got[f'qf_api_request_duration_seconds_bucket{{{route},le="0.0005"}}'] == 2
    assert got[f'qf_api_request_duration_seconds_bucket{{{route},le="0.005"}}'] == 5
    assert got[f'qf_api_request_duration_seconds_bucket{{{route},le="10.0"}}'] == 5
    assert got[f'qf_api_request_duration_seconds_bucket{{{route},le="+Inf"}}'] == 6  # 42 s lands only here
    assert got[f"qf_api_request_duration_seconds_count{{{route}}}"] == 6
    assert got[f"qf_api_request_duration_seconds_sum{{{route}}}"] == pytest.approx(42.007)


def test_flow_metrics_per_worker_and_label_escaping():
    run = [
        {
            "run_id": 'r"1\\',
            "ts": 2 * 10**9,
            "worker": 0,
            "events_in": 100,
            "rows_out": 90,
            "dead_letters": 1,
            "events_per_s": 12.5,
            "lag_p50_ms": 3.0,
            "lag_p99_ms": None,
            "decoder_errors": 2,
            "source_errors": None,  # a row written before the column existed
            "reconnects": 3,
        }
    ]
    text = exposition(render_flow(run, 7, True, 5 * 10**9))
    labels = 'run_id="r\\"1\\\\",worker="0"'
    got = samples(text)
    assert got[f"qf_flow_events_in_total{{{labels}}}"] == 100
    assert got[f'qf_flow_lag_seconds{{{labels},quantile="0.5"}}'] == 0.003
    assert f'qf_flow_lag_seconds{{{labels},quantile="0.99"}}' not in got  # unknown: no sample
    assert got[f"qf_flow_report_age_seconds{{{labels}}}"] == 3.0
    assert got[f"qf_flow_decoder_errors_total{{{labels}}}"] == 2
    assert f"qf_flow_source_errors_total{{{labels}}}" not in got
    assert got[f"qf_flow_reconnects_total{{{labels}}}"] == 3
    assert f"qf_flow_venue_resyncs_total{{{labels}}}" not in got  # no such column in the row
    assert got["qf_store_dead_letters"] == 7 and got["qf_store_up"] == 1
    assert "# TYPE qf_flow_events_in_total counter" in text
