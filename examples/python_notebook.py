# %% [markdown]
# # expansa in a notebook
#
# The demo book (`examples/demo`: a Brazilian accounting and coworking business) read once,
# then its MRR movements, KPIs, a customer's trail, its opportunities as pyarrow tables, and
# pandas (and polars, when installed). Every figure is the CLI's: `expansa movements --data
# examples/demo --from 2024-01 --to 2024-06 --format json` prints the same numbers, rounded
# to the cent. Run it as a script (`python examples/python_notebook.py`) or cell by cell
# (`# %%` cells: VS Code, Jupytext, Spyder).
#
# Install the package first: `pip install maturin && maturin build --release -m
# crates/python/Cargo.toml --out dist && pip install dist/expansa-*.whl`.

# %%
import pathlib

import expansa

demo = pathlib.Path(__file__).resolve().parent / "demo"
book = expansa.read_book(demo)
print(book)

# %% [markdown]
# ## MRR movements, one row per month
# Amounts are exact decimals (`decimal128(38, 10)`), never floats.

# %%
movements = book.movements("2024-01", "2024-06")
print(movements.schema.field("mrr_end"))
frame = movements.to_pandas().set_index("month")
print(frame[["mrr_start", "new", "upsell", "churn", "mrr_end"]].map(lambda d: round(d, 2)))

# %% [markdown]
# The same report filtered to one segment (the CLI's `--where segment=simples`), under
# ChartMogul's rules.

# %%
simples = book.movements("2024-01", "2024-06", rules="chartmogul", where={"segment": "simples"})
print(simples.select(["month", "mrr_end", "customers_end"]).to_pandas())

# %% [markdown]
# ## KPIs
# Rates are fractions (`0.0236` is 2.36%); the header's notes say why a KPI is null.

# %%
kpis = book.kpis("2024-01", "2024-06")
print(kpis.select(["month", "mrr", "arpa", "nrr", "grr", "ltv_cac"]).to_pandas())
for note in expansa.report_header(kpis)["notes"]:
    print("note:", note)

# %% [markdown]
# ## Who makes a figure: one customer's trail

# %%
print(book.trail("padaria-sao-jorge", "2023-01", "2024-12").to_pandas())

# %% [markdown]
# ## Opportunities on a day, ranked by expected MRR gained

# %%
opportunities = book.opportunities("2024-06-30", top=5)
print(opportunities.select(["rank", "customer_id", "kind", "product_id", "expected_gain"]).to_pandas())

# %% [markdown]
# ## polars reads the same tables

# %%
try:
    import polars as pl
except ImportError:
    pl = None
if pl is not None:
    print(pl.from_arrow(movements).select("month", "mrr_end"))

# %% [markdown]
# ## A book with problems raises them all, as `expansa check` lists them

# %%
try:
    expansa.read_book(demo / "no-such-book")
except expansa.BookError as e:
    for problem in e.problems:
        print(problem)
