"""Read companies, holdings and headlines from CSV, Parquet or JSON Lines files and validate them.

The only module of ``esg`` (with ``alert_store``) that touches files. Every failure is an
``EsgDataError`` that names the file and, where it can, the row and the column.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from esg.sentiment import Headline
from esg.validation import EsgDataError, Problem, validate_companies, validate_headlines, validate_holdings

SAMPLE_DIR = Path(__file__).with_name("sample")
SAMPLE_COMPANIES = SAMPLE_DIR / "companies.csv"
SAMPLE_HOLDINGS = SAMPLE_DIR / "holdings.csv"
SAMPLE_HEADLINES = SAMPLE_DIR / "headlines.csv"

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_table(path: Path | str, content: bytes | None = None) -> pd.DataFrame:
    """Every cell of a file as read (CSV cells as text); ``content`` gives the bytes of an upload named ``path``."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise EsgDataError(str(path), [Problem(None, None, f"unknown file type; use one of {', '.join(FORMATS)}")])
    try:
        data = content if content is not None else path.read_bytes()
    except OSError as error:
        raise EsgDataError(str(path), [Problem(None, None, f"cannot be read: {error.strerror}")]) from error
    try:
        if kind == "csv":
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if kind == "parquet":
            return pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas' and pyarrow's parse errors
        raise EsgDataError(str(path), [Problem(None, None, f"cannot be parsed as {kind}: {error}")]) from error
    return _read_jsonl(str(path), data)


def _read_jsonl(source: str, data: bytes) -> pd.DataFrame:
    records = []
    lines = (line for line in data.decode("utf-8-sig", errors="replace").splitlines() if line.strip())
    for row, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise EsgDataError(source, [Problem(row, None, f"is not valid JSON: {error.msg}")]) from error
        if not isinstance(record, dict):
            raise EsgDataError(source, [Problem(row, None, "is not a JSON object")])
        records.append(record)
    return pd.DataFrame.from_records(records, columns=sorted({k for r in records for k in r}))


def load_companies(path: Path | str) -> pd.DataFrame:
    return validate_companies(read_table(path), str(path))


def load_holdings(path: Path | str, content: bytes | None = None) -> pd.DataFrame:
    return validate_holdings(read_table(path, content), str(path))


class HeadlineFile:
    """A headline source read from a CSV, Parquet or JSON Lines file with ``timestamp``, ``headline``, ``source``.

    The file is read afresh on every iteration, so lines appended since are seen.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __iter__(self) -> Iterator[Headline]:
        frame = validate_headlines(read_table(self.path), str(self.path))
        for stamp, text, source in frame.itertuples(index=False):
            yield Headline(int(stamp), text, source)
