"""The API's answers to bad requests, abusive clients, a slow or unreachable store, missing models and its
own failures: clear 4xx/5xx JSON, never a stack trace. Served by uvicorn as in tests/test_api.py."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import replace

import anyio
import pytest
from test_api import SETTINGS, api_fixture, client, flow_store_fixture  # noqa: F401 (fixtures)

from api.settings import RateLimit
from api.store_access import StoreGateway
from store import StoreError, open_store

SNAPSHOT = {"ts": 1, "bids": [[100.0, 1.0], [99.0, 2.0]], "asks": [[101.0, 1.0], [102.0, 3.0]]}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- 404 and 422 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/v1/book/nowhere:XYZ",
        "/v1/features/nowhere:XYZ",
        "/v1/features/nowhere:XYZ?start=0",
        "/v1/predictions/nowhere:XYZ/latest",
        "/v1/predictions/nowhere:XYZ?start=0&end=10",
    ],
)
def test_an_unknown_instrument_is_a_404_naming_it(api, url):
    answer = api.get(url)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "unknown instrument 'nowhere:XYZ': GET /v1/instruments lists those in the store"}


def test_a_known_instrument_without_a_book_is_a_404_saying_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'trades.db'}"
    with open_store(url).writer() as writer:
        writer.write("trades", [("binance:BTCUSDT", 10, 1, None, "t1", 100.0, 1.0, 1)])
    with client(replace(SETTINGS, store_url=url)) as http:
        answer = http.get("/v1/book/binance:BTCUSDT")
        assert answer.status_code == 404
        assert answer.json()["detail"] == "no book stored for 'binance:BTCUSDT' yet"


@pytest.mark.parametrize(
    ("url", "where", "message"),
    [
        ("/v1/features/binance:BTCUSDT?start=5&end=5", ["query", "end"], "start (5) must be before end (5)"),
        ("/v1/predictions/binance:BTCUSDT?start=9&end=3", ["query", "end"], "start (9) must be before end (3)"),
        (
            "/v1/features/binance:BTCUSDT?features=mid,nope,bogus",
            ["query", "features"],
            "unknown features: bogus, nope",
        ),
        ("/v1/features/binance:BTCUSDT?features=", ["query", "features"], "no feature named"),
        ("/v1/features/binance:BTCUSDT?start=-1", ["query", "start"], "the time must lie from 1970-01-01T00:00:00Z"),
        ("/v1/features/binance:BTCUSDT?start=tomorrow", ["query", "start"], "not a time: expected nanoseconds"),
        ("/v1/book/binance:BTCUSDT?levels=11", ["query", "levels"], "less than or equal to 10"),
        ("/v1/predictions/binance:BTCUSDT?limit=10001", ["query", "limit"], "less than or equal to 10000"),
        ("/v1/arbitrage?max_age_ms=0", ["query", "max_age_ms"], "greater than 0"),
    ],
)
def test_bad_parameters_are_a_422_saying_why(api, url, where, message):
    answer = api.get(url)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == where and message in error["msg"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"snapshots": []}, "at least 1 item"),
        ({"snapshots": [{**SNAPSHOT, "ts": 5}, SNAPSHOT]}, "snapshots must be in time order"),
        ({"snapshots": [{**SNAPSHOT, "bids": [[100.0]]}]}, "Field required"),
        ({"snapshots": [{**SNAPSHOT, "asks": []}]}, "at least 1 item"),
        ({"snapshots": [{**SNAPSHOT, "venue": "x"}]}, "Extra inputs are not permitted"),
        ({"snapshot": [SNAPSHOT]}, "Field required"),
    ],
)
def test_a_malformed_predict_body_is_a_422(api, body, message):
    answer = api.post("/v1/predict", json=body)
    assert answer.status_code == 422
    assert message in json.dumps(answer.json())


def test_non_finite_numbers_and_broken_json_are_a_422(api):
    nan = '{"snapshots": [{"ts": 1, "bids": [[NaN, 1.0]], "asks": [[101.0, 1.0]]}]}'
    answer = api.post("/v1/predict", content=nan, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "finite number" in answer.text
    broken = api.post("/v1/predict", content=b'{"snapshots": [', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and "JSON decode error" in broken.text
    unreadable = api.post("/v1/predict", content=b"\xff", headers={"content-type": "application/json"})
    assert unreadable.status_code == 400 and unreadable.json() == {"detail": "There was an error parsing the body"}


# -- limits --------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_whether_declared_or_streamed(flow_store):
    body = json.dumps({"snapshots": [SNAPSHOT] * 40}).encode()
    with client(replace(SETTINGS, store_url=flow_store, max_body_bytes=1_000, api_key="k")) as http:
        declared = http.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        assert declared.status_code == 413  # before the API key is even looked at
        assert declared.json() == {"detail": "request body over 1000 bytes (QF_API_MAX_BODY_BYTES)"}
        chunks = (body[i : i + 300] for i in range(0, len(body), 300))  # no Content-Length: chunked
        streamed = http.post("/v1/predict", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        small = http.post("/v1/predict", json={"snapshots": [SNAPSHOT]}, headers={"X-API-Key": "k"})
        assert small.status_code != 413


def test_a_client_over_the_rate_limit_gets_429_with_retry_after(flow_store):
    with client(replace(SETTINGS, store_url=flow_store, rate_limit=RateLimit(3, 60.0))) as http:
        assert [http.get("/v1/instruments").status_code for _ in range(3)] == [200] * 3
        refused = http.get("/v1/book/binance:BTCUSDT")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"  # one request every 20 s, and the bucket is empty
        assert refused.json() == {"detail": "rate limit of 3 requests per 60 s exceeded; retry after 20 s"}
        assert http.get("/health").status_code == 200  # probes and scrapes are not limited
        metrics = http.get("/metrics").text
        assert 'qf_api_requests_total{route="unmatched",method="GET",status="429"} 1' in metrics


# -- the store -----------------------------------------------------------------------------------


def test_a_store_query_past_the_time_limit_is_a_503(flow_store, monkeypatch):
    monkeypatch.setenv("QF_STORE_TIMEOUT_S", "0.001")
    with client(replace(SETTINGS, store_url=flow_store)) as http:
        answer = http.get("/v1/features/binance:BTCUSDT", params={"start": 0, "limit": 10_000})
        assert answer.status_code == 503
        assert answer.json() == {
            "detail": "the store did not answer within 0.001 s (QF_STORE_TIMEOUT_S); try again later"
        }


def test_an_unreachable_store_is_a_503_and_health_says_so():
    url = f"questdb://127.0.0.1:{closed_port()}?pg_port={closed_port()}"
    with client(replace(SETTINGS, store_url=url)) as http:
        answer = http.get("/v1/book/binance:BTCUSDT")
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("the store cannot be queried: connection failed")
        health = http.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable" and body["store"].startswith("questdb://127.0.0.1:")
        assert body["detail"] == answer.json()["detail"]
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "\nqf_store_up 0\n" in metrics.text


def test_an_internal_failure_is_a_500_without_a_stack_trace(tmp_path):
    url = f"sqlite:///{tmp_path / 'corrupt.db'}"
    row = ("binance:BTCUSDT", 10, 1, "10", None, 0.2, 0.3, 0.5, 1, 0.5, "{not json", "{}", None, None, None)
    with open_store(url).writer() as writer:
        writer.write("predictions", [row])
        writer.write("trades", [("binance:BTCUSDT", 10, 1, None, "t1", 100.0, 1.0, 1)])
    with client(replace(SETTINGS, store_url=url)) as http:
        answer = http.get("/v1/predictions/binance:BTCUSDT/latest")
        assert answer.status_code == 500
        assert answer.json() == {"detail": "internal error; the server log has the details"}


# -- the API key and CORS ------------------------------------------------------------------------


def test_predict_needs_the_api_key_when_one_is_set(flow_store):
    with client(replace(SETTINGS, store_url=flow_store, api_key="s3cret")) as http:
        for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}):
            answer = http.post("/v1/predict", json={"snapshots": [SNAPSHOT]}, headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json() == {"detail": "missing or wrong API key: send it in the X-API-Key header"}
            assert answer.headers["www-authenticate"] == "ApiKey"
        allowed = http.post("/v1/predict", json={"snapshots": []}, headers={"X-API-Key": "s3cret"})
        assert allowed.status_code == 422  # past the key check, to the body's validation
        assert http.get("/v1/instruments").status_code == 200  # reads need no key
        schema = http.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_cors_allows_only_the_configured_origins(flow_store):
    settings = replace(SETTINGS, store_url=flow_store, cors_origins=("https://dash.example",))
    with client(settings) as http:
        preflight = {"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"}
        allowed = http.options("/v1/predict", headers={**preflight, "Access-Control-Request-Headers": "x-api-key"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
        other = http.options("/v1/predict", headers={**preflight, "Origin": "https://evil.example"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        simple = http.get("/v1/instruments", headers={"Origin": "https://dash.example"})
        assert simple.headers["access-control-allow-origin"] == "https://dash.example"
    with client(replace(SETTINGS, store_url=flow_store)) as http:  # no origins set: no CORS headers at all
        assert "access-control-allow-origin" not in http.get("/v1/instruments", headers={"Origin": "x"}).headers


# -- the schema ----------------------------------------------------------------------------------


def test_openapi_documents_every_route_and_its_errors(api):
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {
        "/health",
        "/metrics",
        "/v1/instruments",
        "/v1/book/{instrument}",
        "/v1/features/{instrument}",
        "/v1/predictions/{instrument}/latest",
        "/v1/predictions/{instrument}",
        "/v1/predict",
        "/v1/arbitrage",
        "/v1/volatility/{instrument}",
        "/v1/volatility/{instrument}/history",
        "/v1/backtests",
        "/v1/backtests/{id}",
    }
    assert set(paths["/v1/book/{instrument}"]["get"]["responses"]) == {"200", "404", "422", "429", "503"}
    for route in ("/v1/volatility/{instrument}", "/v1/volatility/{instrument}/history"):
        assert {"200", "404", "429", "503"} <= set(paths[route]["get"]["responses"]), route
    assert set(paths["/v1/backtests"]["get"]["responses"]) == {"200", "422", "429", "503"}
    assert set(paths["/v1/backtests/{id}"]["get"]["responses"]) == {"200", "404", "422", "429", "503"}
    assert set(paths["/v1/predict"]["post"]["responses"]) == {"200", "400", "413", "422", "429", "503"}


def test_shutting_down_closes_a_busy_reader_only_once_its_query_returns(flow_store):
    # The API closes its readers at shutdown while a refresh of the kept answers may still run in a worker
    # thread; freeing a connection under a running query can crash the process.
    gateway = StoreGateway(open_store(flow_store))
    started, go_on, used, answers = threading.Event(), threading.Event(), [], []

    def slow_query(reader):
        used.append(reader)
        started.set()
        assert go_on.wait(20)
        return reader.latest("book", "binance:BTCUSDT", ["instrument"])["instrument"]

    worker = threading.Thread(target=lambda: answers.append(anyio.run(gateway.run, slow_query)))
    worker.start()
    assert started.wait(20)
    gateway.close()
    go_on.set()
    worker.join(20)
    assert answers == ["binance:BTCUSDT"]
    with pytest.raises(StoreError):  # closed once released
        used[0].latest("book", "binance:BTCUSDT")
    again = anyio.run(gateway.run, lambda reader: reader.latest("book", "binance:BTCUSDT") is not None)
    assert again  # a closed gateway opens new readers when used again
    gateway.close()
