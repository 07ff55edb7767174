"""expansa in Python: a subscription business's book, its MRR movements, KPIs, trails,
opportunities and CPQ quotes as pyarrow tables.

    >>> import expansa
    >>> book = expansa.read_book("examples/demo")
    >>> book.movements("2024-01", "2024-06").to_pandas()

Every figure is computed by the same Rust functions as the ``expansa`` command line, from a
plan its own parser validates: a table holds the numbers ``expansa ... --format json`` prints,
in columns named like that JSON's keys. Amounts are exact: Arrow ``decimal128(38, 10)`` (10
places, the report's ``scale``; the JSON rounds them half away from zero to the currency's
minor unit), never floats. The rest of the report's JSON (currency, rules, notes, a quote's
totals) is in the table's schema metadata: see :func:`report_header`.

Errors: a book with problems raises :class:`BookError` (its ``problems`` are the lines
``expansa check`` prints); arguments the CLI refuses raise ``ValueError`` with its message;
a request it refuses (an unknown customer or contract) raises :class:`ExpansaError`.

The manual: docs/python.md in the repository.
"""

import datetime as _dt
import json as _json
import os as _os

from . import _native
from ._errors import BookError, ExpansaError

__all__ = [
    "Book",
    "BookError",
    "ExpansaError",
    "book_from_tables",
    "read_book",
    "report_header",
]


def read_book(path, *, currency="BRL", encoding="utf-8"):
    """Read and validate a book, as ``expansa check --data PATH`` does.

    Args:
        path: a folder of CSV files (``subscriptions.csv`` and the optional tables), a folder
            of Parquet files (``subscriptions.parquet``, ...) or a workbook (``.xlsx``,
            ``.ods``); docs/interchange.md.
        currency: the reporting currency (ISO 4217); lines in others are converted with the
            book's fx rates.
        encoding: of files that are not UTF-8: ``utf-8`` (refuse them) or ``windows-1252``
            (also ``latin1``).

    Returns:
        Book: read once; every report runs on it in memory.

    Raises:
        BookError: the book has problems (all of them, as ``expansa check`` lists them);
            nothing was loaded.
        ValueError: an unknown currency or encoding.
    """
    return Book(_native.read_book(_os.fspath(path), currency, encoding))


def book_from_tables(tables, *, currency="BRL"):
    """A book from in-memory Arrow tables, read with the same checks as :func:`read_book`.

    Args:
        tables: a mapping from a table's name (``subscriptions``, ``customers``, ``products``,
            ``contracts``, ``contracted_prices``, ``fx_rates``, ``marketing_spend``,
            ``usage``, ``offers``) to a ``pyarrow.Table`` (or anything ``pyarrow.table()``
            takes: a polars or pandas frame) with the interchange format's columns: decimals
            as decimal, integer or string (never float), dates as date32 or ``YYYY-MM-DD``
            strings. ``subscriptions`` is required.
        currency: the reporting currency (ISO 4217).

    Returns:
        Book

    Raises:
        BookError: every problem, as for a Parquet book's files, naming the table and the row
            in it (from 1): ``subscriptions:2: unit_price: abc: not a decimal number``.
        ValueError: a name that is not a table of a book, an unknown currency.

    The tables are read in place, a batch at a time, as the files of a Parquet book are
    (docs/interchange.md): no file is written. A table with a buffer that is not at a 16-byte
    boundary is copied first (see :func:`_aligned`).
    """
    import pyarrow as pa

    pairs = [
        (name, _aligned(t if isinstance(t, pa.Table) else pa.table(t)))
        for name, t in tables.items()
    ]
    return Book(_native.read_tables(pairs, currency))


def _aligned(table):
    """``table``, or a copy of the columns of it whose 16-byte values are not at a 16-byte
    boundary (in memory pyarrow allocates, 64-byte aligned): the native reader takes Arrow data
    as arrow-rs does, which needs a decimal's values aligned as a 128-bit integer is (and a
    string view's views likewise), and data read from an Arrow IPC stream (Spark's, a file read
    into memory) may be aligned to 8 bytes only. Other buffers (validity bitmaps, offsets,
    text) need no more than they have."""
    import pyarrow as pa

    def wide(kind):
        return pa.types.is_decimal(kind) or kind in (pa.string_view(), pa.binary_view())

    def misaligned(column):
        return any(
            c.buffers()[1] is not None and c.buffers()[1].address % 16 for c in column.chunks
        )

    def copied(column):
        if pa.types.is_decimal(column.type):
            return column.take(pa.array(range(len(column)), pa.int64()))
        flat = pa.large_string() if column.type == pa.string_view() else pa.large_binary()
        return column.cast(flat).cast(column.type)

    columns = [
        copied(c) if wide(c.type) and misaligned(c) else c for c in table.columns
    ]
    if all(a is b for a, b in zip(columns, table.columns)):
        return table
    return pa.Table.from_arrays(columns, schema=table.schema)


def report_header(table):
    """The rest of a report's JSON, from a table's schema metadata: ``currency``, ``rules``
    and ``scale`` of a movement report; its ``notes`` too for KPIs; ``at``, ``found``... of
    opportunities; a quote's totals and MRR before and after."""
    return _json.loads(table.schema.metadata[b"expansa"])


def _month(value):
    if isinstance(value, (_dt.date, _dt.datetime)):
        return f"{value.year:04}-{value.month:02}"
    return str(value)


def _day(value):
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _where(where):
    """``--where`` flags from a dict (a value or a list of alternatives per key) or from
    ``KEY=VALUE`` strings."""
    if where is None:
        return []
    if isinstance(where, str):
        where = [where]
    pairs = []
    if isinstance(where, dict):
        for key, values in where.items():
            values = [values] if isinstance(values, str) else list(values)
            pairs += [f"{key}={v}" for v in values]
    else:
        pairs = list(where)
    return [_flag("--where", pair) for pair in pairs]


def _flag(flag, value):
    """``--flag=value``: a value that starts with ``-`` stays a value."""
    return f"{flag}={value}"


def _optional(flag, value):
    return [] if value is None else [_flag(flag, value)]


def _repeated(flag, values, render=str):
    if values is None:
        return []
    if isinstance(values, (str, tuple)):
        values = [values]
    if isinstance(values, dict):
        values = list(values.items())
    return [_flag(flag, render(v)) for v in values]


def _pair(value):
    return f"{value[0]}:{value[1]}" if isinstance(value, tuple) else str(value)


class Book:
    """A book read and validated whole (:func:`read_book`, :func:`book_from_tables`).

    Reports run on it in memory; each returns a new ``pyarrow.Table`` (``.to_pandas()``,
    ``polars.from_arrow(...)``). ``where`` filters, as the CLI's ``--where``: a dict
    ``{"segment": "simples", "country": ["BR", "PT"]}`` (a list is alternatives; keys combine
    with AND) or ``["segment=simples"]``; keys ``segment``, ``country``, ``channel``, ``name``,
    ``customer`` (customer attributes), ``family``, ``product``.

    Months are ``"YYYY-MM"`` strings (or dates), days ``"YYYY-MM-DD"`` strings (or dates).
    """

    def __init__(self, native):
        self._native = native

    def __repr__(self):
        return repr(self._native)

    @property
    def currency(self):
        """The reporting currency's ISO 4217 code."""
        return self._native.currency

    def _report(self, command, flags):
        return self._native.report(command, flags)

    def movements(self, from_, to, *, rules="conexa", where=None):
        """The monthly MRR movement report (``expansa movements --format json``;
        docs/movement-rules.md defines each movement).

        Returns:
            pyarrow.Table, one row per month from ``from_`` to ``to``: ``month`` (string
            ``YYYY-MM``), ``mrr_start``, ``new``, ``cross_sell``, ``upsell``,
            ``reactivation``, ``downsell``, ``churn``, ``fx``, ``entering_segment``,
            ``leaving_segment``, ``mrr_end`` (reporting currency per month,
            ``decimal128(38, 10)``, losses negative; ``mrr_end`` = ``mrr_start`` + the
            movements, exactly), ``customers_start``, ``customers_end`` (uint64).

        Raises:
            ValueError: a month that is not ``YYYY-MM``, ``from_`` after ``to``, more than
                1200 months, ``rules`` other than ``conexa`` or ``chartmogul``, a bad
                ``where``.
        """
        flags = [_flag("--from", _month(from_)), _flag("--to", _month(to))]
        flags += [_flag("--rules", rules)]
        return self._report(["movements"], flags + _where(where))

    def kpis(self, from_, to, *, rules="conexa", where=None):
        """The monthly KPI report (``expansa kpis --format json``; docs/kpis.md defines each).

        Returns:
            pyarrow.Table, one row per month: ``month``, then the KPIs in the JSON's order.
            Amounts (``mrr``, ``arr``, ``arpa``, ``ltv``, ``cac``, ``avg_upsell``,
            ``avg_cross_sell``, ``expansion_mrr``, ``renewal_arr``, ``renewed_arr``,
            ``renewed_arr_gross``) are ``decimal128(38, 10)``, exact; rates (fractions:
            0.05 is 5%) and ratios ``decimal128(38, 4)`` and ``cac_payback_months``
            ``decimal128(38, 2)``, rounded as the JSON prints them; counts uint64; null
            where the JSON has null (the header's ``notes`` say why). ``cac_by_channel`` is a
            struct with one amount per channel.

        Raises:
            ValueError: as :meth:`movements`.
        """
        flags = [_flag("--from", _month(from_)), _flag("--to", _month(to))]
        flags += [_flag("--rules", rules)]
        return self._report(["kpis"], flags + _where(where))

    def trail(self, customer, from_, to, *, rules="conexa", where=None):
        """One customer's movements and the lines behind each (``expansa movements
        --explain CUSTOMER --format json``).

        Returns:
            pyarrow.Table, one row per movement: ``month`` (``YYYY-MM``), ``kind``
            (``new``, ``cross_sell``, ``upsell``, ``reactivation``, ``downsell``, ``churn``,
            ``fx``, ``entering_segment``, ``leaving_segment``), ``amount``
            (``decimal128(38, 10)``, losses negative), ``lines`` (list of line ids: for an
            amendment, the new line then its predecessor).

        Raises:
            ExpansaError: a customer the book does not have.
            ValueError: as :meth:`movements`.
        """
        flags = [_flag("--from", _month(from_)), _flag("--to", _month(to))]
        flags += [_flag("--rules", rules)]
        flags += [_flag("--explain", customer)]
        return self._report(["movements"], flags + _where(where))

    def opportunities(
        self,
        at,
        *,
        top=20,
        customer=None,
        kind=None,
        where=None,
        rules="conexa",
        min_support=None,
        min_confidence=None,
        max_len=None,
        usage_threshold=None,
        usage_months=None,
        skip_downsell_months=None,
    ):
        """Upsell and cross-sell opportunities on day ``at``, ranked by expected MRR gained
        (``expansa opportunities --format json``; docs/opportunities.md).

        Args:
            top: how many (0: all; at most 10000).
            customer: only this customer's. kind: ``upsell`` or ``cross_sell`` only.
            The model's options are the CLI's flags of the same names.

        Returns:
            pyarrow.Table, one row per opportunity, in rank order: ``rank`` (int64),
            ``customer_id``, ``customer_name``, ``kind``, ``product_id``,
            ``from_product_id`` (strings), ``probability``, ``gain``, ``expected_gain``,
            ``customer_mrr`` (amounts per month in the reporting currency, as the JSON prints
            them: at its minor unit; ``decimal128(38, 10)``), ``price_source``, ``why`` (the
            evidence, as JSON text). Header: ``at``, ``transactions``, ``rules``,
            ``skipped``, ``found``.
        """
        flags = [_flag("--at", _day(at)), _flag("--top", top), _flag("--rules", rules)]
        flags += _optional("--customer", customer)
        flags += _optional("--kind", kind)
        flags += _optional("--min-support", min_support)
        flags += _optional("--min-confidence", min_confidence)
        flags += _optional("--max-len", max_len)
        flags += _optional("--usage-threshold", usage_threshold)
        flags += _optional("--usage-months", usage_months)
        flags += _optional("--skip-downsell-months", skip_downsell_months)
        return self._report(["opportunities"], flags + _where(where))

    def quote_amend(
        self,
        contract,
        effective,
        *,
        add=None,
        set=None,
        remove=None,
        swap=None,
        precision="month_day",
    ):
        """Price a change to a contract from day ``effective`` to its end, co-terminated and
        prorated (``expansa quote amend --format json``; docs/contracts.md). Changes apply
        in the order remove, swap, set, add.

        Args:
            add: units to add, ``{"SEAT": 2}`` or ``["SEAT:2"]``.
            set: quantities to set, likewise.
            remove: products to remove, ``["ADDON"]``.
            swap: products to replace by another, ``{"PLAN_S": "PLAN_M"}`` or
                ``["PLAN_S:PLAN_M"]``.
            precision: proration, ``month_day`` (CPQ's Monthly + Daily), ``day`` or
                ``month``.

        Returns:
            pyarrow.Table, one row per priced line, each in its own currency: ``product_id``,
            ``line_id``, ``start``, ``end``, ``currency``, ``prior_quantity``, ``quantity``,
            ``effective_quantity``, ``unit_price``, ``price_term_months`` (int64),
            ``prorate_multiplier``, ``prorate_fraction`` (exact, as text),
            ``prorated_unit_price``, ``net_total`` (the JSON's decimals, as
            ``decimal128(38, 10)``; amounts at the line's currency's minor unit). Header:
            ``contract``, ``customer_id``, ``effective``, ``end``, ``totals`` (per
            currency), ``total_in_reporting_currency``, ``mrr_before``, ``mrr_after``,
            ``mrr_after_constant_currency``.

        Raises:
            ExpansaError: an unknown contract or product, a day outside the contract...
            ValueError: no change given, a malformed ``PRODUCT:QTY``.
        """
        flags = [_flag("--contract", contract), _flag("--effective", _day(effective))]
        flags += [_flag("--precision", precision)]
        flags += _repeated("--add", add, _pair)
        flags += _repeated("--set", set, _pair)
        flags += _repeated("--remove", remove)
        flags += _repeated("--swap", swap, _pair)
        return self._report(["quote", "amend"], flags)
