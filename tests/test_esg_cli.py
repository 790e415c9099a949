"""`quantumflow dashboard esg`: its help, and bad input files refused before anything is served."""

from typer.testing import CliRunner

from dashboards.cli import dashboard_app

runner = CliRunner()


def test_help_names_every_option_and_the_default_port():
    result = runner.invoke(dashboard_app, ["esg", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--port", "--companies", "--holdings", "--headlines", "--alerts-db", "--address"):
        assert option in result.output
    assert "8502" in result.output and "fictional sample" in result.output


def test_the_group_lists_the_esg_dashboard():
    result = runner.invoke(dashboard_app, ["--help"])
    assert result.exit_code == 0 and "esg" in result.output


def test_a_bad_companies_file_is_refused_naming_row_and_column(tmp_path):
    bad = tmp_path / "companies.csv"
    bad.write_text("company_id,name\nX1,Broken\n")
    result = runner.invoke(dashboard_app, ["esg", "--companies", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "column 'ticker': missing column" in " ".join(result.output.split())


def test_a_bad_headlines_file_is_refused(tmp_path):
    bad = tmp_path / "news.csv"
    bad.write_text("timestamp,headline\nsoon,Something\n")
    result = runner.invoke(dashboard_app, ["esg", "--headlines", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "row 1" in result.output and "timestamp" in result.output


def test_a_companies_file_that_is_not_there_is_refused_saying_so(tmp_path):
    missing = tmp_path / "companies.csv"
    result = runner.invoke(dashboard_app, ["esg", "--companies", str(missing)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "cannot be read: No such file or directory" in " ".join(result.output.split())
