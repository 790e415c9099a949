"""Loading companies, holdings and headlines: the sample loads, and every bad cell is named by row and column."""

import json
from pathlib import Path

import pandas as pd
import pytest
from esg_records import record

from esg import schema
from esg.loader import (
    SAMPLE_COMPANIES,
    SAMPLE_HEADLINES,
    SAMPLE_HOLDINGS,
    HeadlineFile,
    load_companies,
    load_holdings,
    read_table,
)
from esg.validation import EsgDataError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "esg.md"


def write_csv(path: Path, records: list[dict]) -> Path:
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def problems(path: Path, loader=load_companies) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(EsgDataError) as error:
        loader(path)
    assert str(path) in str(error.value)
    return [(p.row, p.column, p.message) for p in error.value.problems]


def test_the_sample_loads_and_says_it_is_fictional():
    frame = load_companies(SAMPLE_COMPANIES)
    assert len(frame) == 36 and frame["sector"].nunique() == 6 and frame.index.name == "company_id"
    assert frame["data_source"].str.startswith("FICTIONAL").all()
    assert frame["controversies"].dtype == "int64" and frame["scope1_tco2e"].dtype == "float64"
    assert "carbon_intensity" not in frame  # derived, never read
    assert load_holdings(SAMPLE_HOLDINGS)["weight"].sum() == 100
    assert len(list(HeadlineFile(SAMPLE_HEADLINES))) == 32


def test_a_bad_number_is_named_by_row_and_column(tmp_path):
    records = [record("a"), record("b", scope1_tco2e="lots"), record("c")]
    assert problems(write_csv(tmp_path / "c.csv", records)) == [(2, "scope1_tco2e", "'lots' is not a number")]


def test_every_problem_is_listed_with_the_row_identifier(tmp_path):
    records = [
        record("a", board_independence_pct=120),
        record("b", revenue_musd=0, lost_time_injury_rate=-1),
        record("c", controversies=1.5, sector=""),
    ]
    path = write_csv(tmp_path / "c.csv", records)
    assert problems(path) == [
        (1, "board_independence_pct", "must be at most 100, got 120.0"),
        (2, "revenue_musd", "must be greater than 0, got 0.0"),
        (2, "lost_time_injury_rate", "must be at least 0, got -1.0"),
        (3, "sector", "is empty"),
        (3, "controversies", "must be a whole number, got 1.5"),
    ]
    with pytest.raises(EsgDataError, match=r"row 2 \(company_id 'b'\), column 'revenue_musd': must be greater"):
        load_companies(path)


def test_a_missing_column_is_named(tmp_path):
    records = [{k: v for k, v in record("a").items() if k != "water_use_m3"}]
    ((row, column, message),) = problems(write_csv(tmp_path / "c.csv", records))
    assert (row, column) == (None, "water_use_m3") and message.startswith("missing column")


def test_duplicates_are_refused(tmp_path):
    records = [record("a"), record("b", name="Company A"), record("a")]
    assert problems(write_csv(tmp_path / "c.csv", records)) == [
        (2, "name", "'Company A' already appears in row 1"),
        (3, "company_id", "'a' already appears in row 1"),
        (3, "name", "'Company a' already appears in row 1"),
        (3, "ticker", "'A' already appears in row 1"),
    ]


def test_a_given_carbon_intensity_must_agree_with_the_emissions(tmp_path):
    # record(): (1000 + 0) / 100 = 10 tCO2e per USD m; 1% tolerance
    records = [record("a", carbon_intensity=10.05), record("b", carbon_intensity=12), record("c", carbon_intensity="")]
    assert problems(write_csv(tmp_path / "c.csv", records)) == [
        (2, "carbon_intensity", "12 disagrees with (scope1 + scope2) / revenue = 10")
    ]


def test_blank_lines_in_a_file_are_named_as_empty(tmp_path):
    path = tmp_path / "c.csv"
    header = ",".join(record("a"))
    path.write_text(header + "\n" + ",".join(map(str, record("a").values())) + "\nb,Company b\n")
    found = problems(path)
    assert found[0] == (2, "ticker", "is empty") and all(row == 2 for row, _, _ in found)


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame([record("a"), record("b", scope2_tco2e=500.0)]).to_parquet(path)
    frame = load_companies(path)
    assert frame.loc["b", "scope2_tco2e"] == 500.0 and frame.loc["a", "name"] == "Company a"


def test_parquet_errors_are_named_too(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame([record("a", employee_turnover_pct=None), record("b", employee_turnover_pct=float("inf"))]).to_parquet(
        path
    )
    assert problems(path) == [
        (1, "employee_turnover_pct", "is empty"),
        (2, "employee_turnover_pct", "'inf' is not finite"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.xlsx", b"", "unknown file type"),
        ("missing.csv", None, "cannot be read"),
        ("c.parquet", b"not parquet", "cannot be parsed as parquet"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EsgDataError, match=message):
        load_companies(path)


def test_holdings_errors(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("ticker,weight\nALDV,10\nBRSQ,-2\naldv,3\n,4\nCNDM,x\n")
    assert problems(path, load_holdings) == [
        (2, "weight", "must be at least 0, got -2"),
        (3, "ticker", "'aldv' already appears in row 1"),
        (4, "ticker", "is empty"),
        (5, "weight", "'x' is not a number"),
    ]
    path.write_text("holding,weight\nALDV,0\n")
    assert problems(path, load_holdings) == [
        (None, "weight", "the weights sum to zero; at least one holding needs a positive weight")
    ]


def test_an_uploaded_holdings_file_is_read_from_its_bytes():
    holdings = load_holdings("upload.csv", b"holding,weight\nALDV,2\nUT02,1\n")
    assert holdings.to_dict("list") == {"holding": ["ALDV", "UT02"], "weight": [2.0, 1.0]}


def test_headlines_from_jsonl_with_both_kinds_of_time(tmp_path):
    path = tmp_path / "news.jsonl"
    lines = [
        {"timestamp": "2024-11-04T07:05:00Z", "headline": "One", "source": "Wire"},
        {"timestamp": "2024-11-04 08:05:00", "headline": "Two"},  # naive means UTC; source may be missing
        {"timestamp": 1_730_707_500_000_000_000, "headline": "Three", "source": "Feed"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    first, second, third = HeadlineFile(path)
    assert first.timestamp_ns == 1_730_703_900_000_000_000 and first.source == "Wire"
    assert second.timestamp_ns == 1_730_707_500_000_000_000 and second.source == ""
    assert third.timestamp_ns == 1_730_707_500_000_000_000 and third.headline == "Three"


def test_headline_errors(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text("timestamp,headline,source\n2024-11-04T07:05:00Z,Fine,W\nyesterday,Bad time,W\n2024-11-05,,W\n")
    assert problems(path, lambda p: list(HeadlineFile(p))) == [
        (2, "timestamp", "'yesterday' is neither an ISO 8601 time nor integer nanoseconds since 1970"),
        (3, "headline", "is empty"),
    ]
    path = tmp_path / "news.jsonl"
    path.write_text('{"timestamp": "2024-11-04", "headline": "ok"}\n{oops\n')
    assert problems(path, lambda p: list(HeadlineFile(p)))[0][:2] == (2, None)


def test_csv_cells_are_read_as_written():
    frame = read_table("x.csv", b"company_id,ticker\n007,NA\n")
    assert frame.loc[0].tolist() == ["007", "NA"]  # no leading zeros lost, no "NA" turned into a gap


def test_the_docs_describe_every_column():
    text = DOCS.read_text()
    assert all(f"`{column.name}`" in text for column in schema.COLUMNS)
