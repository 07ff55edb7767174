"""What the tests share: the repository, the CLI binary they compare with, and the comparison
of a table with the CLI's JSON."""

import json
import os
import pathlib
import subprocess
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
DEMO = REPO / "examples" / "demo"
TESTDATA = REPO / "testdata"


def _binary():
    given = os.environ.get("EXPANSA_BIN")
    if given:
        return pathlib.Path(given)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        path = target / profile / "expansa"
        if path.exists():
            return path
    pytest.exit(
        "no expansa binary to compare with: `cargo build -p expansa-cli` or set EXPANSA_BIN",
        returncode=1,
    )


EXPANSA = _binary()


def cli(*args):
    """The CLI's run: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [str(EXPANSA), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "C"},
    )
    return done.returncode, done.stdout, done.stderr


def cli_json(*args):
    """The CLI's JSON for `args` (which must succeed)."""
    code, out, err = cli(*args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def cli_error(*args):
    """The lines the CLI prints on standard error for `args` (which must fail)."""
    code, _, err = cli(*args)
    assert code != 0
    return err.rstrip("\n").split("\n")


def plain(value, places):
    """A decimal as the CLI prints it at `places` places: rounded half away from zero, never
    -0."""
    d = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if d == 0:
        d = abs(d)
    return str(d)


def places(text):
    return len(text.split(".")[1]) if "." in text else 0


def assert_value(got, expected, where):
    """One cell of a table against the CLI's JSON value: a decimal string must be what the
    table's value prints as at the string's places, a number or text the same, an object the
    same field by field."""
    if expected is None:
        assert got is None, where
    elif isinstance(expected, dict):
        assert isinstance(got, dict), where
        assert list(got) == list(expected), where
        for key in expected:
            assert_value(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, str) and isinstance(got, Decimal):
        assert plain(got, places(expected)) == expected, (where, got, expected)
    else:
        assert got == expected, (where, got, expected)


def assert_rows(table, rows, where):
    """A table against the CLI's rows: the same columns in the same order, the same values."""
    assert table.num_rows == len(rows), where
    if rows:
        assert table.column_names == list(rows[0]), where
    for i, (got, expected) in enumerate(zip(table.to_pylist(), rows)):
        for key, value in expected.items():
            assert_value(got[key], value, f"{where}[{i}].{key}")


def decimals_only(table):
    """No column of a table (or of a struct in it) is a float."""
    def check(name, t):
        assert not pa.types.is_floating(t), f"{name} is {t}"
        if pa.types.is_struct(t):
            for field in t:
                check(f"{name}.{field.name}", field.type)

    for field in table.schema:
        check(field.name, field.type)
