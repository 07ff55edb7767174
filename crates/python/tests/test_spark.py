"""The Spark job against the CLI: on a real local cluster (a master, two worker JVMs, their
Python workers), `expansa.spark`'s JSON is byte for byte what `expansa movements|kpis --format
json` prints on the same book (the golden books, the demo, the contract books, generated
books of several seeds); a book with problems fails the job with `expansa check`'s problems
and writes nothing."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (scripts/test.sh installs it)")

import expansa  # noqa: E402
import expansa.spark  # noqa: E402
from conftest import DEMO, REPO, TESTDATA, cli, cli_error  # noqa: E402

GOLDEN = sorted(p for p in (TESTDATA / "golden").iterdir() if p.is_dir())
GEN_DATA = REPO.parent / "shared" / "tools" / "gen_data.py"


@pytest.fixture(scope="module")
def spark():
    """One session for the module: `local-cluster[2,1,1024]`, two workers of one core and
    1 GiB, each its own JVM and Python workers (this interpreter, with the package)."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local-cluster[2,1,1024]")
        .appName("expansa tests")
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.task.maxFailures", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    """A book's Parquet form, as `expansa export --format parquet` writes it (once per book)."""
    made = {}

    def of(book):
        if book not in made:
            out = tmp_path_factory.mktemp("parquet") / pathlib.Path(book).name
            code, _, err = cli("export", "--data", book, "--out", out, "--format", "parquet")
            assert code == 0, err
            made[book] = out
        return made[book]

    return of


def months_of(book):
    """The range of a golden book's hand-checked report."""
    months = json.loads((book / "expected.conexa.json").read_text())["months"]
    return months[0]["month"], months[-1]["month"]


def same_as_cli(spark, book, parquet_book, command, from_, to, rules="conexa", rows_per_group=3):
    """The job's JSON on the Parquet form is the CLI's stdout on the book, byte for byte.
    Groups of about 3 rows by default: several groups, some of several customers."""
    code, expected, err = cli(
        command, "--data", book, "--from", from_, "--to", to, "--rules", rules,
        "--format", "json",
    )
    assert code == 0, err
    run = expansa.spark.movements_json if command == "movements" else expansa.spark.kpis_json
    got = run(spark, parquet_book, from_, to, rules=rules, rows_per_group=rows_per_group)
    assert got == expected, f"{book} {command} {rules}"


@pytest.mark.parametrize("book", GOLDEN, ids=lambda p: p.name)
def test_golden_books(spark, parquet, book):
    from_, to = months_of(book)
    for command in ("movements", "kpis"):
        same_as_cli(spark, book, parquet(book), command, from_, to)


def test_demo(spark, parquet):
    for command in ("movements", "kpis"):
        same_as_cli(spark, DEMO, parquet(DEMO), command, "2023-06", "2024-12")
    for command in ("movements", "kpis"):
        same_as_cli(spark, DEMO, parquet(DEMO), command, "2024-01", "2024-06", rules="chartmogul")


@pytest.mark.parametrize(
    "name", ["contracts", "contracts-classes", "renewals-fx", "opportunities"]
)
def test_contract_and_offer_books(spark, parquet, name):
    """Contracts and their renewals, contracted prices, several currencies, offers, usage."""
    book = TESTDATA / name
    for command in ("movements", "kpis"):
        same_as_cli(spark, book, parquet(book), command, "2023-01", "2025-12")


@pytest.mark.skipif(not GEN_DATA.exists(), reason=f"no {GEN_DATA}")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_books(spark, parquet, tmp_path, seed):
    book = tmp_path / f"gen-{seed}"
    subprocess.run(
        [sys.executable, str(GEN_DATA), str(book), "300", "30", str(seed)],
        check=True, capture_output=True,
    )
    for command in ("movements", "kpis"):
        same_as_cli(spark, book, parquet(book), command, "2023-01", "2025-06")
    # About one customer to a group (as many groups as rows), and the whole book in one.
    for rows_per_group in (1, expansa.spark.ROWS_PER_GROUP):
        same_as_cli(spark, book, parquet(book), "kpis", "2023-01", "2025-06",
                    rows_per_group=rows_per_group)


def disagreeing_book(tmp_path):
    """The contract book with one customer's line (L2, of c2) put on a contract of another
    customer (K1, of c1): the subscriptions and the contracts disagree, and each customer's
    group alone sees only its side."""
    book = tmp_path / "bad"
    shutil.copytree(TESTDATA / "contracts", book)
    subs = (book / "subscriptions.csv").read_text().replace("L2,c2,K2,", "L2,c2,K1,")
    (book / "subscriptions.csv").write_text(subs)
    out = tmp_path / "bad-parquet"
    out.mkdir()
    for csv in book.glob("*.csv"):
        header = csv.read_text().split("\n", 1)[0].split(",")
        text = pacsv.ConvertOptions(column_types={name: pa.string() for name in header})
        pq.write_table(pacsv.read_csv(csv, convert_options=text), out / f"{csv.stem}.parquet")
    return book, out


def test_bad_input_fails_the_job(spark, tmp_path):
    book, bad = disagreeing_book(tmp_path)
    expected = cli_error("check", "--data", bad)
    assert len(expected) > 1
    with pytest.raises(expansa.BookError) as e:
        expansa.spark.kpis_json(spark, bad, "2024-01", "2024-12")
    assert e.value.problems == expected[:-1]
    assert f"error: {e.value.message}" == expected[-1]
    # The same problems as the CSV book's, at the same lines (a Parquet file's row is the
    # CSV line's row).
    csv_problems = cli_error("check", "--data", book)
    assert [p.split(":", 2)[2] for p in expected[:-1]] == [
        p.split(":", 2)[2] for p in csv_problems[:-1]
    ]


def test_wrong_type_fails_the_job(spark, parquet, tmp_path):
    """A Parquet file with a float price: the job fails with the problem `expansa check`
    prints for the file (its Parquet type), nothing else."""
    bad = tmp_path / "float"
    shutil.copytree(parquet(TESTDATA / "contracts"), bad)
    subs = pq.read_table(bad / "subscriptions.parquet")
    k = subs.schema.get_field_index("unit_price")
    subs = subs.set_column(k, "unit_price", subs["unit_price"].cast(pa.float64()))
    pq.write_table(subs, bad / "subscriptions.parquet")
    expected = cli_error("check", "--data", bad)
    assert "Parquet type DOUBLE" in expected[0]
    with pytest.raises(expansa.BookError) as e:
        expansa.spark.movements_json(spark, bad, "2024-01", "2024-12")
    assert [*e.value.problems, f"error: {e.value.message}"] == expected


def test_command_line(spark, parquet, tmp_path):
    """`python -m expansa.spark`: nothing written on bad input, the report written whole
    otherwise (run in this process, on the module's session, which it leaves running)."""
    _, bad = disagreeing_book(tmp_path)
    out = tmp_path / "out.json"
    args = ["--from", "2024-01", "--to", "2024-12", "--out", str(out)]
    assert expansa.spark.main(["kpis", "--input", str(bad), *args]) == 1
    assert list(tmp_path.glob("out.json*")) == []
    book = TESTDATA / "contracts"
    assert expansa.spark.main(["movements", "--input", str(parquet(book)), *args]) == 0
    _, expected, _ = cli(
        "movements", "--data", book, "--from", "2024-01", "--to", "2024-12", "--format", "json"
    )
    assert out.read_text() == expected
