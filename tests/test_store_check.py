"""The store's pre-flight check: a store that cannot be used says so, naming the URL and the cause, before
anything is written; and the settings of the flow's retries."""

from __future__ import annotations

import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from store import TABLES, StoreConfigError, StoreError, StoreUnavailable, open_store
from store.url import backoff_s, retries


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_error_is_not_a_value_error():
    assert not issubclass(StoreError, ValueError)
    assert issubclass(StoreConfigError, StoreError) and issubclass(StoreUnavailable, StoreError)


def test_the_check_creates_every_table_of_a_new_file(tmp_path):
    path = tmp_path / "new" / "q.db"
    open_store(f"sqlite:///{path}").check()
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == set(TABLES)
    open_store(f"sqlite:///{path}").check()  # and again: nothing to do


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("folder", "is a folder, not a database file"),
        ("notes.txt", "is not a SQLite database"),
        ("notes.txt/q.db", "notes.txt is a file, not a folder"),
    ],
)
@pytest.mark.parametrize("write", [True, False])
def test_a_sqlite_path_that_is_no_database_names_the_url_and_the_cause(tmp_path, where, cause, write):
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    url = f"sqlite:///{tmp_path / where}"
    with pytest.raises(StoreUnavailable) as caught:
        open_store(url).check(write)
    assert str(caught.value).startswith(f"store {url} cannot be used: ") and cause in str(caught.value)
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"  # left as it was


def test_a_sqlite_file_where_nothing_can_be_written(tmp_path):
    url = "sqlite:////proc/quantumflow/q.db"  # not writable, even for root
    with pytest.raises(StoreUnavailable, match="cannot be used: cannot make the folder /proc/quantumflow"):
        open_store(url).check()


def test_a_questdb_with_nothing_listening_names_the_ilp_port():
    port = closed_port()
    url = f"questdb://127.0.0.1:{port}?pg_port={closed_port()}"
    with pytest.raises(StoreUnavailable, match=f"no answer on the ILP/HTTP port 127.0.0.1:{port}: Connection refused"):
        open_store(url).check()


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_questdb_answering_http_but_not_pg_wire_names_the_pg_port():
    server = HTTPServer(("127.0.0.1", 0), _Ping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pg = closed_port()
        url = f"questdb://127.0.0.1:{server.server_address[1]}?pg_port={pg}"
        for write in (True, False):
            with pytest.raises(StoreUnavailable) as caught:
                open_store(url).check(write)
            message = str(caught.value)
            assert f"no answer on the PG wire port 127.0.0.1:{pg}" in message and "\n" not in message
    finally:
        server.shutdown()


def test_the_retry_settings_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("QF_STORE_RETRIES", raising=False)
    monkeypatch.delenv("QF_STORE_BACKOFF_S", raising=False)
    assert (retries(), backoff_s()) == (5, 0.5)
    monkeypatch.setenv("QF_STORE_RETRIES", "0")
    monkeypatch.setenv("QF_STORE_BACKOFF_S", "0")
    assert (retries(), backoff_s()) == (0, 0.0)
    for bad in ("-1", "two", "1.5", "1001"):
        monkeypatch.setenv("QF_STORE_RETRIES", bad)
        with pytest.raises(StoreConfigError, match="QF_STORE_RETRIES"):
            retries()
    for bad in ("-0.1", "soon", "inf", "nan"):
        monkeypatch.setenv("QF_STORE_BACKOFF_S", bad)
        with pytest.raises(StoreConfigError, match="QF_STORE_BACKOFF_S"):
            backoff_s()
