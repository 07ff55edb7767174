"""The Python package against the CLI: every table holds what `expansa ... --format json`
prints for the same book, to the cent, in decimals (never floats); errors carry the CLI's
problems and messages."""

import datetime
import json
import runpy
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import expansa
from conftest import (
    DEMO,
    REPO,
    TESTDATA,
    assert_rows,
    assert_value,
    cli,
    cli_error,
    cli_json,
    decimals_only,
)

GOLDEN = sorted(p for p in (TESTDATA / "golden").iterdir() if p.is_dir())
GOLDEN_REPORTS = sorted(
    (book, expected) for book in GOLDEN for expected in book.glob("expected.*.json")
)


def golden_request(expected):
    """The range, rules and filter of a golden report `expected.RULES[.where.K=V].json`."""
    doc = json.loads(expected.read_text())
    parts = expected.name[len("expected.") : -len(".json")].split(".where.")
    where = parts[1:] or None
    return doc, doc["months"][0]["month"], doc["months"][-1]["month"], parts[0], where


@pytest.fixture(scope="module")
def demo():
    return expansa.read_book(DEMO)


def where_flags(where):
    return [x for w in where or [] for x in ("--where", w)]


@pytest.mark.parametrize("rules", ["conexa", "chartmogul"])
@pytest.mark.parametrize(
    "from_,to,where",
    [
        ("2023-01", "2024-12", None),
        ("2024-03", "2024-03", None),
        ("2023-06", "2024-06", ["segment=simples"]),
        ("2023-01", "2024-12", ["channel=google-ads", "channel=indicacao"]),
    ],
)
def test_movements_are_the_clis(demo, rules, from_, to, where):
    table = demo.movements(from_, to, rules=rules, where=where)
    doc = cli_json("movements", "--data", DEMO, "--from", from_, "--to", to,
                   "--rules", rules, *where_flags(where))
    assert_rows(table, doc["months"], "movements")
    header = dict(doc)
    del header["months"]
    assert expansa.report_header(table) == header
    decimals_only(table)
    assert table.schema.field("mrr_end").type == pa.decimal128(38, 10)


@pytest.mark.parametrize("rules", ["conexa", "chartmogul"])
@pytest.mark.parametrize("where", [None, ["channel=google-ads"], ["family=contabilidade"]])
def test_kpis_are_the_clis(demo, rules, where):
    table = demo.kpis("2023-01", "2024-12", rules=rules, where=where)
    doc = cli_json("kpis", "--data", DEMO, "--from", "2023-01", "--to", "2024-12",
                   "--rules", rules, *where_flags(where))
    assert_rows(table, doc["months"], "kpis")
    assert expansa.report_header(table)["notes"] == doc["notes"]
    decimals_only(table)
    assert table.schema.field("nrr").type == pa.decimal128(38, 4)
    assert table.schema.field("cac_payback_months").type == pa.decimal128(38, 2)
    assert table.schema.field("ltv").type == pa.decimal128(38, 10)


@pytest.mark.parametrize(
    "book,expected", GOLDEN_REPORTS, ids=[f"{b.name}/{e.name}" for b, e in GOLDEN_REPORTS]
)
def test_golden_reports(book, expected):
    doc, from_, to, rules, where = golden_request(expected)
    table = expansa.read_book(book).movements(from_, to, rules=rules, where=where)
    assert_rows(table, doc["months"], f"{book.name} (hand-checked)")
    got = cli_json("movements", "--data", book, "--from", from_, "--to", to,
                   "--rules", rules, *where_flags(where))
    assert_rows(table, got["months"], f"{book.name} (CLI)")


@pytest.mark.parametrize("book", GOLDEN, ids=[b.name for b in GOLDEN])
def test_golden_kpis(book):
    _, from_, to, _, _ = golden_request(book / "expected.conexa.json")
    table = expansa.read_book(book).kpis(from_, to)
    doc = cli_json("kpis", "--data", book, "--from", from_, "--to", to)
    assert_rows(table, doc["months"], book.name)
    decimals_only(table)


def test_every_customers_trail_is_the_clis(demo):
    customers = pacsv.read_csv(DEMO / "customers.csv").column("id").to_pylist()
    assert len(customers) > 20
    moved = 0
    for customer in customers:
        table = demo.trail(customer, "2023-01", "2024-12")
        doc = cli_json("movements", "--data", DEMO, "--from", "2023-01", "--to", "2024-12",
                       "--explain", customer)
        assert_rows(table, doc["movements"], customer)
        assert expansa.report_header(table) == {"customer": customer, "currency": "BRL"}
        assert table.column_names == ["month", "kind", "amount", "lines"]
        decimals_only(table)
        moved += table.num_rows
    assert moved > 30


def test_trail_with_a_filter(demo):
    table = demo.trail("padaria-sao-jorge", "2023-01", "2024-12", where={"family": "folha"})
    doc = cli_json("movements", "--data", DEMO, "--from", "2023-01", "--to", "2024-12",
                   "--explain", "padaria-sao-jorge", "--where", "family=folha")
    assert_rows(table, doc["movements"], "filtered trail")


OPPORTUNITY_KEYS = [
    "rank", "customer_id", "customer_name", "kind", "product_id", "from_product_id",
    "probability", "gain", "expected_gain", "customer_mrr", "price_source", "why",
]


def opportunity_rows(doc):
    rows = []
    for o in doc["opportunities"]:
        row = dict(o)
        row["why"] = json.dumps(o["why"], separators=(",", ":"))
        rows.append(row)
    return rows


@pytest.mark.parametrize(
    "book,at,options,flags",
    [
        (DEMO, "2024-03-31", {"top": 0}, ["--top", "0"]),
        (DEMO, datetime.date(2024, 6, 30), {"top": 5, "kind": "upsell"},
         ["--top", "5", "--kind", "upsell"]),
        (TESTDATA / "opportunities", "2024-12-31", {"top": 0, "min_support": 1},
         ["--top", "0", "--min-support", "1"]),
        (TESTDATA / "opportunities", "2024-12-31",
         {"customer": "c5", "usage_threshold": "0.8", "usage_months": 2},
         ["--customer", "c5", "--usage-threshold", "0.8", "--usage-months", "2"]),
    ],
)
def test_opportunities_are_the_clis(book, at, options, flags):
    table = expansa.read_book(book).opportunities(at, **options)
    day = at.isoformat() if isinstance(at, datetime.date) else at
    doc = cli_json("opportunities", "--data", book, "--at", day, *flags)
    rows = opportunity_rows(doc)
    assert_rows(table, rows, f"opportunities of {book.name}")
    for got, expected in zip(table.to_pylist(), doc["opportunities"]):
        assert json.loads(got["why"]) == expected["why"]
    header = dict(doc)
    del header["opportunities"]
    assert expansa.report_header(table) == header
    decimals_only(table)
    # The same columns with rows or without.
    assert table.column_names == OPPORTUNITY_KEYS
    assert table.schema.field("expected_gain").type == pa.decimal128(38, 10)
    assert table.schema.field("from_product_id").type == pa.string()
    assert table.schema.field("rank").type == pa.int64()


@pytest.mark.parametrize(
    "book,contract,effective,changes,flags",
    [
        ("contracts", "K1", "2024-01-23", {"add": {"SEAT": 1, "BIG": 1}},
         ["--add", "SEAT:1", "--add", "BIG:1"]),
        ("contracts", "K2", "2024-02-05", {"add": ["ADDON:1"]}, ["--add", "ADDON:1"]),
        ("contracts", "K3", "2023-10-03", {"swap": {"PLAN_S": "PLAN_L"}},
         ["--swap", "PLAN_S:PLAN_L"]),
        ("contracts", "K1", "2024-03-01", {"set": {"SEAT": 3}, "precision": "day"},
         ["--set", "SEAT:3", "--precision", "day"]),
    ],
)
def test_quote_amend_is_the_clis(book, contract, effective, changes, flags):
    folder = TESTDATA / book
    table = expansa.read_book(folder).quote_amend(contract, effective, **changes)
    doc = cli_json("quote", "amend", "--data", folder, "--contract", contract,
                   "--effective", effective, *flags)
    assert_rows(table, doc["lines"], f"quote {contract}")
    for got, expected in zip(table.to_pylist(), doc["lines"]):
        for key, value in expected.items():
            if isinstance(got[key], Decimal):
                assert got[key] == Decimal(value), key
    header = dict(doc)
    del header["lines"]
    assert expansa.report_header(table) == header
    decimals_only(table)
    assert table.schema.field("net_total").type == pa.decimal128(38, 10)
    assert table.schema.field("price_term_months").type == pa.int64()


def test_quotes_in_several_currencies_are_the_clis():
    folder = TESTDATA / "contracts-classes"
    contracts = pacsv.read_csv(folder / "contracts.csv").to_pylist()
    lines = pacsv.read_csv(folder / "subscriptions.csv").to_pylist()
    book = expansa.read_book(folder)
    quoted = 0
    for k in contracts:
        held = [line for line in lines if line["contract_id"] == k["id"]]
        if not held:
            continue
        effective = k["start_date"] + datetime.timedelta(days=40)
        args = ["--contract", k["id"], "--effective", effective.isoformat(),
                "--add", f"{held[0]['product_id']}:1"]
        code, out, err = cli("quote", "amend", "--data", folder, *args, "--format", "json")
        if code != 0:
            with pytest.raises(expansa.ExpansaError) as e:
                book.quote_amend(k["id"], effective, add={held[0]["product_id"]: 1})
            assert f"error: {e.value}" == err.rstrip("\n").split("\n")[-1]
            continue
        table = book.quote_amend(k["id"], effective, add={held[0]["product_id"]: 1})
        assert_rows(table, json.loads(out)["lines"], k["id"])
        quoted += 1
    assert quoted >= 2


def test_amounts_are_exact_decimals_and_pandas_reads_them(demo):
    table = demo.movements("2023-01", "2024-12")
    frame = table.to_pandas()
    assert isinstance(frame["mrr_end"][0], Decimal)
    assert list(frame.columns) == table.column_names
    for row in table.to_pylist():
        moved = sum(row[k] for k in ("new", "cross_sell", "upsell", "reactivation",
                                     "downsell", "churn"))
        assert row["mrr_start"] + moved == row["mrr_end"]
    kpis = demo.kpis("2024-01", "2024-03").to_pandas()
    assert isinstance(kpis["nrr"][0], Decimal)
    assert kpis["cac_by_channel"][0]["google-ads"] == Decimal("1800")


def test_polars_reads_the_tables(demo):
    pl = pytest.importorskip("polars")
    frame = pl.from_arrow(demo.movements("2024-01", "2024-06"))
    assert frame.schema["mrr_end"] == pl.Decimal(38, 10)
    assert frame.height == 6
    kpis = pl.from_arrow(demo.kpis("2024-01", "2024-06"))
    assert "google-ads" in kpis.unnest("cac_by_channel").columns
    # polars frames make a book too.
    frames = {name: pl.from_arrow(as_text(t)) for name, t in demo_tables().items()}
    book = expansa.book_from_tables(frames)
    assert book.movements("2023-01", "2024-12").equals(demo.movements("2023-01", "2024-12"))


def bad_book(tmp_path):
    book = tmp_path / "bad"
    shutil.copytree(DEMO, book)
    subs = (book / "subscriptions.csv").read_text().split("\n")
    subs[2] = subs[2].replace("390.00", "abc")
    subs[3] = subs[3].replace("2023-01-09", "2023-02-30")
    (book / "subscriptions.csv").write_text("\n".join(subs))
    customers = (book / "customers.csv").read_text()
    (book / "customers.csv").write_text(customers.replace("padaria-sao-jorge,", "", 1))
    return book


def test_a_bad_book_raises_the_clis_problems(tmp_path):
    book = bad_book(tmp_path)
    stderr = cli_error("check", "--data", book)
    with pytest.raises(expansa.BookError) as e:
        expansa.read_book(book)
    assert len(e.value.problems) >= 3
    assert e.value.problems == stderr[:-1]
    assert e.value.total == len(stderr) - 1
    assert f"error: {e.value.message}" == stderr[-1]
    assert str(e.value).split("\n") == stderr[:-1] + [e.value.message]
    assert isinstance(e.value, expansa.ExpansaError)


def test_a_missing_book_raises_the_clis_problem(tmp_path):
    stderr = cli_error("check", "--data", tmp_path / "nowhere")
    with pytest.raises(expansa.BookError) as e:
        expansa.read_book(tmp_path / "nowhere")
    assert e.value.problems == stderr[:-1]


@pytest.mark.parametrize(
    "call,flags",
    [
        (lambda b: b.movements("2024-05", "2024-01"),
         ["movements", "--from", "2024-05", "--to", "2024-01"]),
        (lambda b: b.movements("2024-13", "2024-01"),
         ["movements", "--from", "2024-13", "--to", "2024-01"]),
        (lambda b: b.kpis("2024-01", "2024-02", rules="nope"),
         ["kpis", "--from", "2024-01", "--to", "2024-02", "--rules", "nope"]),
        (lambda b: b.movements("1800-01", "2024-02"),
         ["movements", "--from", "1800-01", "--to", "2024-02"]),
        (lambda b: b.kpis("2024-01", "2024-02", where=["segment"]),
         ["kpis", "--from", "2024-01", "--to", "2024-02", "--where", "segment"]),
        (lambda b: b.opportunities("2024-02-30"), ["opportunities", "--at", "2024-02-30"]),
        (lambda b: b.opportunities("2024-02-01", top=10_001),
         ["opportunities", "--at", "2024-02-01", "--top", "10001"]),
    ],
)
def test_bad_arguments_raise_the_clis_message(demo, call, flags):
    stderr = cli_error(*flags, "--data", DEMO)
    with pytest.raises(ValueError) as e:
        call(demo)
    assert stderr[0] == f"error: {e.value}"


def test_a_refused_request_raises_the_clis_message(demo):
    stderr = cli_error("movements", "--data", DEMO, "--from", "2024-01", "--to", "2024-02",
                       "--explain", "nobody")
    with pytest.raises(expansa.ExpansaError) as e:
        demo.trail("nobody", "2024-01", "2024-02")
    assert stderr == [f"error: {e.value}"]
    # A value that starts with `-` is a value, not a flag.
    stderr = cli_error("movements", "--data", DEMO, "--from", "2024-01", "--to", "2024-02",
                       "--explain=--top")
    with pytest.raises(expansa.ExpansaError) as e:
        demo.trail("--top", "2024-01", "2024-02")
    assert stderr == [f"error: {e.value}"]
    folder = TESTDATA / "contracts"
    stderr = cli_error("quote", "amend", "--data", folder, "--contract", "K9",
                       "--effective", "2024-02-01", "--add", "SEAT:1")
    with pytest.raises(expansa.ExpansaError) as e:
        expansa.read_book(folder).quote_amend("K9", "2024-02-01", add={"SEAT": 1})
    assert stderr == [f"error: {e.value}"]
    with pytest.raises(ValueError):
        expansa.read_book(folder).quote_amend("K1", "2024-02-01")


def test_a_parquet_book_gives_the_same_tables(demo, tmp_path):
    out = tmp_path / "parquet"
    code, _, err = cli("export", "--data", DEMO, "--out", out, "--format", "parquet")
    assert code == 0, err
    book = expansa.read_book(out)
    assert book.movements("2023-01", "2024-12").equals(demo.movements("2023-01", "2024-12"))
    assert book.kpis("2023-01", "2024-12").equals(demo.kpis("2023-01", "2024-12"))


def csv_tables(folder):
    return {
        p.stem: pacsv.read_csv(
            p, convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False,
                                                    auto_dict_encode=False)
        )
        for p in folder.glob("*.csv")
    }


def demo_tables():
    return csv_tables(DEMO)


def as_text(table):
    return pa.table({name: table.column(name).cast(pa.string()) for name in table.column_names})


def test_a_book_from_arrow_tables(demo):
    tables = {name: as_text(t) for name, t in demo_tables().items()}
    book = expansa.book_from_tables(tables)
    assert book.movements("2023-01", "2024-12").equals(demo.movements("2023-01", "2024-12"))
    assert book.kpis("2023-01", "2024-12").equals(demo.kpis("2023-01", "2024-12"))


def test_bad_arrow_tables_raise_the_problems_of_the_same_csv(tmp_path):
    book = tmp_path / "bad"
    shutil.copytree(DEMO, book)
    subs = (book / "subscriptions.csv").read_text().split("\n")
    subs[1] = subs[1].replace("390.00", "abc")
    subs[2] = subs[2].replace("2023-01-09", "2023-02-30")
    subs[4] = subs[4].replace(",1,390.00,", ",-1,390.00,")
    (book / "subscriptions.csv").write_text("\n".join(subs))
    customers = (book / "customers.csv").read_text()
    (book / "customers.csv").write_text(customers.replace("2023-01-16", "2023-13-16", 1))
    csv_problems = cli_error("check", "--data", book)[:-1]
    with pytest.raises(expansa.BookError) as e:
        expansa.book_from_tables({name: as_text(t) for name, t in csv_tables(book).items()})
    # A table's row n is its CSV's line n + 1 (after the header).
    expected = []
    for p in csv_problems:
        file, line, rest = p.split(":", 2)
        expected.append(f"{file.removesuffix('.csv')}:{int(line) - 1}:{rest}")
    assert e.value.problems == expected
    assert len(expected) >= 3


def test_arrow_tables_of_the_wrong_types_or_names_are_refused():
    tables = {name: as_text(t) for name, t in demo_tables().items()}
    floats = dict(tables, subscriptions=tables["subscriptions"].set_column(
        5, "unit_price", pa.array([1.5] * tables["subscriptions"].num_rows)))
    with pytest.raises(expansa.BookError) as e:
        expansa.book_from_tables(floats)
    assert e.value.problems[0].startswith(
        "subscriptions:0: unit_price: unit_price: the column is of Arrow type Float64")
    assert "floats are refused" in e.value.problems[0]
    missing = dict(tables, subscriptions=tables["subscriptions"].drop_columns(["customer_id"]))
    with pytest.raises(expansa.BookError) as e:
        expansa.book_from_tables(missing)
    assert e.value.problems[0].startswith("subscriptions:0: customer_id")
    with pytest.raises(ValueError) as e:
        expansa.book_from_tables({"subscription": tables["subscriptions"]})
    assert "not a table of a book" in str(e.value)


def test_a_book_from_typed_arrow_tables(demo):
    tables = {name: as_text(t) for name, t in demo_tables().items()}
    subs = tables["subscriptions"]
    typed = subs.set_column(
        subs.schema.get_field_index("unit_price"), "unit_price",
        subs.column("unit_price").cast(pa.decimal128(12, 2)),
    )
    typed = typed.set_column(
        typed.schema.get_field_index("start_date"), "start_date",
        typed.column("start_date").cast(pa.date32()),
    )
    book = expansa.book_from_tables(dict(tables, subscriptions=typed))
    assert book.movements("2023-01", "2024-12").equals(demo.movements("2023-01", "2024-12"))


def test_windows_1252_books_are_read_as_the_cli_reads_them():
    folder = TESTDATA / "import" / "windows-1252"
    stderr = cli_error("check", "--data", folder)
    with pytest.raises(expansa.BookError) as e:
        expansa.read_book(folder)
    assert e.value.problems == stderr[:-1]
    book = expansa.read_book(folder, encoding="windows-1252")
    code, out, _ = cli("check", "--data", folder, "--encoding", "windows-1252")
    assert code == 0 and "customers" in out
    with pytest.raises(ValueError) as e:
        expansa.read_book(folder, encoding="ebcdic")
    assert "ebcdic" in str(e.value)
    assert book.currency == "BRL"


def test_another_reporting_currency():
    folder = TESTDATA / "renewals-fx"
    table = expansa.read_book(folder, currency="EUR").kpis("2023-01", "2025-12")
    doc = cli_json("kpis", "--data", folder, "--currency", "EUR", "--from", "2023-01",
                   "--to", "2025-12")
    assert expansa.report_header(table)["currency"] == "EUR"
    assert_rows(table, doc["months"], "EUR")
    # Rates relative to the book's currency, read with another: the CLI's problems.
    folder = TESTDATA / "golden" / "foreign-currency"
    stderr = cli_error("check", "--data", folder, "--currency", "USD")
    with pytest.raises(expansa.BookError) as e:
        expansa.read_book(folder, currency="USD")
    assert e.value.problems == stderr[:-1]
    with pytest.raises(ValueError) as e:
        expansa.read_book(folder, currency="XYZ")
    assert cli_error("check", "--data", folder, "--currency", "XYZ") == [f"error: {e.value}"]


def test_the_notebook_example_runs(capsys):
    runpy.run_path(str(REPO / "examples" / "python_notebook.py"), run_name="__main__")
    assert "mrr_end" in capsys.readouterr().out


def test_the_readme_example_runs(monkeypatch, capsys):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Python"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(REPO)
    exec(compile(code, "README.md", "exec"), {})
    assert "mrr_end" in capsys.readouterr().out


def test_cells_compare_as_the_cli_prints(demo):
    assert_value(Decimal("-0.004"), "0.00", "negative zero")
    assert_value(Decimal("2.005"), "2.01", "half away from zero")
    with pytest.raises(AssertionError):
        assert_value(Decimal("2.004"), "2.01", "off by a cent")


def test_tables_read_from_an_ipc_stream():
    """Arrow data aligned to 8 bytes only (as an IPC stream, Spark's, is read) is copied before
    the native reader takes it: the same book, no panic."""
    def text(path):
        header = path.read_text().split("\n", 1)[0].split(",")
        types = pacsv.ConvertOptions(column_types={name: pa.string() for name in header})
        return pacsv.read_csv(path, convert_options=types)

    tables = {p.stem: text(p) for p in (TESTDATA / "contracts").glob("*.csv")}
    subs = tables["subscriptions"]
    subs = subs.set_column(
        subs.schema.get_field_index("unit_price"),
        "unit_price",
        subs["unit_price"].cast(pa.decimal128(38, 2)),
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, subs.schema) as w:
        w.write_table(subs)
    stream = sink.getvalue().to_pybytes()

    def shifted(by):
        memory = pa.allocate_buffer(len(stream) + by)  # 64-byte aligned
        memoryview(memory).cast("B")[by:] = stream
        return pa.ipc.open_stream(memory[by:]).read_all()

    def misaligned(t):
        return t["unit_price"].chunk(0).buffers()[1].address % 16 != 0

    tables["subscriptions"] = next(t for t in map(shifted, (0, 8)) if misaligned(t))
    book = expansa.book_from_tables(tables)
    whole = expansa.read_book(TESTDATA / "contracts")
    assert book.movements("2024-01", "2024-12") == whole.movements("2024-01", "2024-12")
