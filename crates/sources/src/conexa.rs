//! Conexa (conexa.app): contracts and recurring sales, as the Conexa API v2 returns them, turned
//! into a book.
//!
//! # Source
//! The field names are those of the public Conexa API v2 documentation, the Postman collection
//! "API v2 Conexa" published at <https://documenter.getpostman.com/view/25182821/2s93RZMpcB>
//! (linked from <https://conexa.app/api-docs>; a copy of the collection is kept in the
//! `conexa` Ruby client, `docs/postman-collection.json` of
//! <https://github.com/guilhermegazzinelli/conexa-ruby>). The endpoints read are
//! `GET /contracts` (and `GET /contract/:id`), `GET /recurringSales` (`GET /recurringSale/:id`),
//! `GET /customers`, `GET /products` and `GET /sales`.
//!
//! # Input
//! A folder holding the JSON the API returned, one file per list (names compared without case):
//! - `contracts.json` (or `contratos.json`): contracts;
//! - `recurring_sales.json` (or `recurringSales.json`, `recurring-sales.json`,
//!   `vendas_recorrentes.json`): recurring sales (vendas recorrentes);
//! - optional `customers.json` (`clientes.json`), `products.json` (`produtos.json`) and
//!   `sales.json` (`vendas.json`).
//!
//! At least one of the first two must be there. Each file is a list in any shape
//! [`crate::input::json_objects`] reads: a JSON array, the API's page `{"data": [...],
//! "pagination": {...}}`, or an array of such pages; a single object (`GET /contract/:id`) is a
//! list of one. A file that is not JSON, or not such a list, or a non-empty list none of whose
//! elements has the key `customerId` (every contract and recurring sale has it) is one problem
//! and nothing is written.
//!
//! # Where problems point
//! JSON has no rows: a problem's *line* is the element's 1-based position in its list (pages
//! counted one after the other) and its *column* is the JSON key path inside the element
//! (`endDate`, `complementaryServices[0].amount`, `lastContractualReadjustment.percentage`).
//!
//! # Amounts
//! Amounts are decimal reais as the API writes them (`"amount": 500.5`; the documentation types
//! them `decimal`, and the plan prices of `GET /plan/:id` are per billing period), in the book's
//! currency (`--currency`, BRL by default): Conexa has no currency field. A JSON number is read
//! from its text exactly as written (never through a binary float), as is an amount written as
//! a JSON string (`"500.50"`); a number with an exponent (`1e3`) is refused.
//!
//! # Rules
//! - A contract's own `amount` ("Valor final do Contrato", per billing period) is one line of
//!   its plan (product `plan-<planId>`, quantity 1) with the contract's `paymentFrequency`
//!   (`Monthly`, `Bimonthly`, `Quarterly`, `Semester`, `Yearly`; pt-BR `mensal`, `bimestral`,
//!   `trimestral`, `semestral`, `anual` too) from `startDate` to `endDate` (the last day,
//!   inclusive; empty = evergreen). Line id `contract-<contractId>`, contract id the same.
//!   *Assumption*: the GET `amount` does not include the complementary services (the documented
//!   response of contract 29 has `amount` 150 beside a service of 280, so it cannot be their
//!   sum, although the POST note says the amount charged is).
//! - Each `complementaryServices[]` element of a contract is a line of its own
//!   (`contract-<contractId>-service-<n>`, n from 1): product `productOrServiceId`, `quantity`,
//!   `amount` ("Valor final do serviço": the whole amount for all units, per billing period of the
//!   contract), its own `startDate`/`endDate`, else the contract's; it ends no later than the
//!   contract. Without `amount`, the price of `products.json` times the quantity is used.
//! - A recurring sale is a line `recurringSale-<recurringSaleId>`: product `productId`, or
//!   `package-<packageId>` for an hours package (Conexa Coworking), `quantity`, `amount` (the
//!   whole amount of one occurrence: *assumption*, as a sale's `amount` is "Valor final da
//!   venda" for all its units), `frequency` (`Daily`, `Weekly` and the contract ones; a day or
//!   week is written as a [`crate::Period`] of days or weeks), `startDate`, `endDate` (its last
//!   day). With no `endDate` and `occurrenceQuantity` N, it ends the day before
//!   `startDate` + N periods. Its contract is `contract-<recurringSaleContractId>` when it has
//!   one, else it is its own contract (`recurringSale-<id>`).
//! - Unit price: the whole amount divided by the quantity when that is exact (at most 10
//!   decimal places and giving the amount back); otherwise the line is written with quantity 1
//!   at the whole amount (same MRR, exact).
//! - Discount: `discountValue` (reais; documented on `POST /contract`, `PATCH /contract/:id`
//!   and on sales) is read where present: `amount` is then the final, discounted amount, the
//!   list price is `amount + discountValue` and `discount_pct = discountValue / list × 100`
//!   when that percentage is exact (at most 10 decimal places and giving the amount back);
//!   otherwise the line is written at the discounted price with no `discount_pct`.
//! - Price adjustment (reajuste, by IGP-M, IPCA, ...): a contract's `lastContractualReadjustment`
//!   `{index, date, percentage}` means `amount` is the adjusted price since `date`. The plan line
//!   is then two lines: `contract-<id>` at the price before, `amount / (1 + percentage/100)`
//!   rounded to the currency's minor unit (Conexa keeps prices in cents), from the start to the
//!   day before `date`, and `contract-<id>@<date>` at `amount` from `date`, which `revises` the
//!   first. Only the last readjustment is in the API: when the contract started more than a year
//!   before it, the months before that year are listed in the report as not rebuilt.
//!   A recurring sale's `lastAdjustmentDate` has no percentage: its price before that day cannot
//!   be rebuilt, the current price is used and those months are listed as not rebuilt.
//!   *Assumption*: the readjustment is applied to the contract's own amount, not to its
//!   complementary services (which carry their own amounts and dates).
//! - Skipped, with a reason: a contract or recurring sale that is inactive (`isActive: false`)
//!   and never generated a sale (`salesQuantity` / `generatedQuantity` 0): `not_billable`
//!   (Conexa has no draft status; this is a contract keyed in and ended, or never started,
//!   before billing); an amount (or quantity) of zero: `zero_amount` (an hours package included
//!   in a contract at 0, for one); a recurring sale of one occurrence
//!   (`occurrenceQuantity: 1`) and every element of `sales.json` (a sale, venda avulsa or one
//!   occurrence of a contract or recurring sale): `one_off`; an element repeated identically:
//!   `duplicate`. The complementary services of a skipped contract are skipped with it.
//! - Refused (a problem; nothing is written unless `--skip-refused`): an end before the start
//!   (`contradicts`); an inactive contract or sale that generated sales but has no end date
//!   (`contradicts`: when it ended is unknown); an id repeated with different values
//!   (`contradicts`); a recurring sale whose contract belongs to another customer
//!   (`contradicts`); a missing or unreadable value (`bad_value`). The complementary services
//!   of a refused contract are refused with it.
//! - Contracts become `contracts.csv` rows (`startDate`, `endDate`; Conexa documents no
//!   renewal terms: `fidelityDate` is a loyalty date, not a renewal) when at least one of their
//!   lines is written; a recurring sale outside a contract is a contract of its own. Customers
//!   (`customers.json`) become `customers.csv` rows: `customerId`, `name`, segment =
//!   `fieldOfActivity` (ramo de atividade), country = `address.country` (given for foreign
//!   customers only); a customer a line names that `customers.json` lacks is written with its id
//!   only. Products (`products.json`) become `products.csv` rows (`productId`, `name`; a
//!   product's `price` is a price per sale, not per month, so it is not written as a list
//!   price); plans are products `plan-<planId>` of kind `plan`.
//! - Every element (and every complementary service) is reported once: mapped, skipped or
//!   refused; a readjusted contract's row names both its lines as its book id (`contract-501
//!   contract-501@2024-07-01`), and the rebuilt price is one of the report's notes.

use crate::book::{ContractOut, CustomerOut, Interval, LineOut, Period, ProductOut};
use crate::input::{display_name, json_objects, read_json};
use crate::{money, time, Context};
use expansa_import::Problem;
use expansa_ledger::{Date, Month};
use hashbrown::HashMap;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Names of the contract list.
pub const CONTRACT_FILES: &[&str] = &["contracts.json", "contratos.json"];
/// Names of the recurring sale list.
pub const RECURRING_SALE_FILES: &[&str] = &[
    "recurring_sales.json",
    "recurringSales.json",
    "recurring-sales.json",
    "vendas_recorrentes.json",
];
/// Names of the customer list.
pub const CUSTOMER_FILES: &[&str] = &["customers.json", "clientes.json"];
/// Names of the product list.
pub const PRODUCT_FILES: &[&str] = &["products.json", "produtos.json"];
/// Names of the sale list.
pub const SALE_FILES: &[&str] = &["sales.json", "vendas.json"];

/// Decimal places a unit price or a discount percentage may have to be written.
const MAX_SCALE: u32 = 10;

/// Converts a folder of Conexa API lists into the book (see the module documentation).
/// Errors: no contract or recurring sale list in the input, a file that is not JSON or not a
/// list of what its name says, a book file that cannot be written.
pub fn convert(ctx: &mut Context) -> Result<(), Problem> {
    let contracts_path = ctx.input.find(CONTRACT_FILES);
    let sales_path = ctx.input.find(RECURRING_SALE_FILES);
    if contracts_path.is_none() && sales_path.is_none() {
        return Err(ctx.input.problem(&format!(
            "has no contracts.json or recurring_sales.json: is this a Conexa export (the lists \
             GET /contracts and GET /recurringSales return)? (found: {})",
            ctx.input.listing().join(", ")
        )));
    }
    let contracts = load(contracts_path, "contracts", Some("customerId"))?;
    let recurring = load(sales_path, "recurring sales", Some("customerId"))?;
    let customers = load(ctx.input.find(CUSTOMER_FILES), "customers", None)?;
    let products = load(ctx.input.find(PRODUCT_FILES), "products", None)?;
    let sales = load(ctx.input.find(SALE_FILES), "sales", None)?;

    let mut state = State::default();
    if let Some(list) = &customers {
        state.customers_given = true;
        for (k, item) in items(list)?.into_iter().enumerate() {
            customer(ctx, &mut state, &list.file, k as u64 + 1, item)?;
        }
    }
    if let Some(list) = &products {
        for (k, item) in items(list)?.into_iter().enumerate() {
            product(ctx, &mut state, &list.file, k as u64 + 1, item)?;
        }
    }
    if let Some(list) = &contracts {
        let elements = items(list)?;
        // Every contract's customer first, so that a recurring sale can be checked against
        // its contract whatever the order of the lists.
        for item in &elements {
            if let Some(obj) = item.as_object() {
                if let (Some(id), Some(c)) = (
                    obj.get("contractId")
                        .or_else(|| obj.get("id"))
                        .and_then(id_text),
                    obj.get("customerId").and_then(id_text),
                ) {
                    state.contract_customer.entry(id).or_insert(c);
                }
            }
        }
        for (k, item) in elements.into_iter().enumerate() {
            contract(ctx, &mut state, &list.file, k as u64 + 1, item)?;
        }
    }
    if let Some(list) = &recurring {
        for (k, item) in items(list)?.into_iter().enumerate() {
            recurring_sale(ctx, &mut state, &list.file, k as u64 + 1, item)?;
        }
    }
    if let Some(list) = &sales {
        for (k, item) in items(list)?.into_iter().enumerate() {
            let id = item
                .as_object()
                .and_then(|o| o.get("saleId").or_else(|| o.get("id")))
                .and_then(id_text)
                .unwrap_or_default();
            ctx.report.skipped(
                &list.file,
                k as u64 + 1,
                &id,
                "one_off",
                "a sale (venda): one charge, not a recurring line; recurring revenue is read \
                 from contracts and recurring sales",
            );
        }
    }
    Ok(())
}

/// A list file read whole.
struct List {
    file: String,
    value: Value,
    what: &'static str,
}

/// Reads a list file, checking its shape; `needs`: a key some element of a non-empty list must
/// have.
fn load(
    path: Option<PathBuf>,
    what: &'static str,
    needs: Option<&str>,
) -> Result<Option<List>, Problem> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = display_name(&path);
    let value = read_json(&path)?;
    let list = List { file, value, what };
    let elements = items(&list)?;
    if let Some(key) = needs {
        if !elements.is_empty()
            && !elements
                .iter()
                .any(|e| e.as_object().is_some_and(|o| o.contains_key(key)))
        {
            return Err(Problem::new(
                &list.file,
                0,
                key,
                "",
                &format!(
                    "no element has {key}: is this a list of Conexa {what} (as the Conexa API v2 \
                     returns them)?"
                ),
            ));
        }
    }
    Ok(Some(list))
}

/// The elements of a list (a single object is a list of one).
fn items(list: &List) -> Result<Vec<&Value>, Problem> {
    if let Value::Object(map) = &list.value {
        if !map.contains_key("data") && map.contains_key("customerId") {
            return Ok(vec![&list.value]);
        }
    }
    json_objects(&list.value, "data").ok_or_else(|| {
        Problem::new(
            &list.file,
            0,
            "json",
            "",
            &format!(
                "is not a list of Conexa {}: expected a JSON array, or {{\"data\": [...]}} as \
                 the Conexa API v2 list endpoints return",
                list.what
            ),
        )
    })
}

/// What the conversion remembers between rows.
#[derive(Default)]
struct State {
    customers_given: bool,
    /// Customer of each contract id of contracts.json (its first element).
    contract_customer: HashMap<String, String>,
    /// First line and value of each id, per list, to tell duplicates from contradictions.
    seen: HashMap<(&'static str, String), (u64, Value)>,
    /// Product prices of products.json.
    prices: HashMap<String, Decimal>,
}

/// Why an element is refused.
use crate::report::{refusal, Refusal as Bad};

/// What became of a row.
enum Outcome {
    Mapped(String),
    Skipped(&'static str, String),
    Refused(Bad),
}

fn report(ctx: &mut Context, file: &str, line: u64, source_id: &str, reason: &str, o: Outcome) {
    match o {
        Outcome::Mapped(book_id) => ctx.report.mapped(file, line, source_id, reason, &book_id),
        Outcome::Skipped(reason, detail) => {
            ctx.report.skipped(file, line, source_id, reason, &detail)
        }
        Outcome::Refused(b) => ctx.report.refuse(file, line, source_id, b),
    }
}

/// An id as text: a string or an integer.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A value as problems show it.
fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A decimal: a JSON string, or a JSON number read from its text as written (serde_json keeps
/// numbers' text: its `arbitrary_precision` feature), never through a binary float.
fn decimal_of(v: &Value) -> Result<Decimal, String> {
    match v {
        Value::String(s) => money::decimal(s),
        Value::Number(n) => money::decimal(&n.to_string()),
        _ => Err("is not a number".into()),
    }
}

/// One element (or a nested object of it) being read; `path` prefixes its keys in problems.
struct Row<'a> {
    obj: &'a Map<String, Value>,
    path: String,
    tz: &'a jiff::tz::TimeZone,
}

impl<'a> Row<'a> {
    /// A top-level element as a row; refused when it is not a JSON object.
    fn top(item: &'a Value, tz: &'a jiff::tz::TimeZone) -> Result<Self, Outcome> {
        let obj = item
            .as_object()
            .ok_or_else(|| Outcome::Refused(not_object("row")))?;
        Ok(Row {
            obj,
            path: String::new(),
            tz,
        })
    }

    fn col(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, reason: &'static str, key: &str, detail: &str) -> Bad {
        refusal(reason, &self.col(key), &shown(self.get(key)), detail)
    }

    /// The first of `keys` present, as an id.
    fn id(&self, keys: &[&str]) -> Result<Option<String>, Bad> {
        for key in keys {
            if let Some(v) = self.get(key) {
                return id_text(v)
                    .map(Some)
                    .ok_or_else(|| self.bad("bad_value", key, "is not an id"));
            }
        }
        Ok(None)
    }

    fn required_id(&self, keys: &[&str]) -> Result<String, Bad> {
        self.id(keys)?.ok_or_else(|| {
            self.bad(
                "bad_value",
                keys.first().copied().unwrap_or(""),
                "is missing",
            )
        })
    }

    /// A decimal >= 0.
    fn amount(&self, key: &str) -> Result<Option<Decimal>, Bad> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match decimal_of(v) {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                Err(self.bad("bad_value", key, "is negative"))
            }
            Ok(d) => Ok(Some(d)),
            Err(e) => Err(self.bad("bad_value", key, &e)),
        }
    }

    /// A decimal, sign allowed.
    fn signed(&self, key: &str) -> Result<Option<Decimal>, Bad> {
        self.get(key)
            .map(|v| decimal_of(v).map_err(|e| self.bad("bad_value", key, &e)))
            .transpose()
    }

    /// A day: the first day of service (`end` false) or the last (`end` true).
    fn day(&self, key: &str, end: bool) -> Result<Option<Date>, Bad> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let Value::String(s) = v else {
            return Err(self.bad("bad_value", key, "is not a date (YYYY-MM-DD)"));
        };
        if s.trim().is_empty() {
            return Ok(None);
        }
        let when = time::parse_when(s).map_err(|e| self.bad("bad_value", key, &e))?;
        Ok(Some(if end {
            time::end_day(&when, self.tz)
        } else {
            time::start_day(&when, self.tz)
        }))
    }

    /// A boolean (`true`/`false`, or 1/0 as the API's filters write it).
    fn flag(&self, key: &str) -> Result<Option<bool>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some(_) => Err(self.bad("bad_value", key, "is not true or false")),
        }
    }

    /// A whole number >= 0 (a JSON number, or a string as `salesQuantity` is typed).
    fn count(&self, key: &str) -> Result<Option<u64>, Bad> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_u64() => Ok(n.as_u64()),
            Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
                Ok(s.trim().parse::<u64>().ok())
            }
            Some(_) => Err(self.bad("bad_value", key, "is not a whole number")),
        }
    }

    /// A billing frequency.
    fn period(&self, key: &str) -> Result<Period, Bad> {
        let text = match self.get(key) {
            Some(Value::String(s)) => s.trim().to_lowercase(),
            _ => String::new(),
        };
        let months = |n| Ok(Period::months(n));
        match text.as_str() {
            "daily" | "diario" | "diário" | "diaria" | "diária" => Ok(Period {
                interval: Interval::Day,
                count: 1,
            }),
            "weekly" | "semanal" => Ok(Period {
                interval: Interval::Week,
                count: 1,
            }),
            "monthly" | "mensal" => months(1),
            "bimonthly" | "bimestral" => months(2),
            "quarterly" | "trimestral" => months(3),
            "semester" | "semiannual" | "semestral" => months(6),
            "yearly" | "annual" | "anual" => Ok(Period {
                interval: Interval::Year,
                count: 1,
            }),
            "" => Err(self.bad("bad_value", key, "is missing")),
            _ => Err(self.bad(
                "bad_value",
                key,
                "is not a Conexa frequency (Daily, Weekly, Monthly, Bimonthly, Quarterly, \
                 Semester, Yearly)",
            )),
        }
    }
}

/// Whether an element (a `what`) was seen before under `id`: skipped (`duplicate`) for an
/// identical repeat, refused for a different one.
fn repeat(
    state: &mut State,
    what: &'static str,
    id: &str,
    line: u64,
    item: &Value,
    column: &str,
) -> Result<(), Outcome> {
    match state.seen.get(&(what, id.to_string())) {
        Some((first, value)) if value == item => Err(Outcome::Skipped(
            "duplicate",
            format!("the same {what} as line {first}"),
        )),
        Some((first, _)) => Err(Outcome::Refused(refusal(
            "contradicts",
            column,
            id,
            &format!("the same id as line {first}, with other values"),
        ))),
        None => {
            state
                .seen
                .insert((what, id.to_string()), (line, item.clone()));
            Ok(())
        }
    }
}

fn not_object(column: &str) -> Bad {
    refusal("bad_value", column, "", "is not a JSON object")
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// The id an element gives itself, for the report (empty when it has none).
fn own_id(item: &Value, keys: &[&str]) -> String {
    item.as_object()
        .and_then(|o| keys.iter().find_map(|k| o.get(*k)))
        .and_then(id_text)
        .unwrap_or_default()
}

/// Writes a customer named by a line unless it is written already.
fn ensure_customer(ctx: &mut Context, state: &State, id: &str) -> Result<(), Problem> {
    if ctx.book.has_customer(id) {
        return Ok(());
    }
    let c = CustomerOut {
        id: id.to_string(),
        ..CustomerOut::default()
    };
    ctx.book
        .customer(&c)
        .map_err(|e| ctx.book.write_problem(e))?;
    if state.customers_given {
        ctx.report.notes.push(format!(
            "customer {id} is not in customers.json: written with its id only"
        ));
    }
    Ok(())
}

fn customer(
    ctx: &mut Context,
    state: &mut State,
    file: &str,
    line: u64,
    item: &Value,
) -> Result<(), Problem> {
    let id = own_id(item, &["customerId", "id"]);
    let tz = ctx.options.timezone.clone();
    let mut read = || -> Result<CustomerOut, Outcome> {
        let row = Row::top(item, &tz)?;
        let id = row
            .required_id(&["customerId", "id"])
            .map_err(Outcome::Refused)?;
        repeat(state, "customer", &id, line, item, "customerId")?;
        Ok(CustomerOut {
            id,
            name: text(row.get("name")),
            registered_on: None,
            segment: text(row.get("fieldOfActivity")),
            country: text(
                row.get("address")
                    .and_then(Value::as_object)
                    .and_then(|a| a.get("country")),
            ),
            channel: None,
        })
    };
    let outcome = match read() {
        Ok(c) => {
            ctx.book
                .customer(&c)
                .map_err(|e| ctx.book.write_problem(e))?;
            Outcome::Mapped(c.id)
        }
        Err(o) => o,
    };
    report(ctx, file, line, &id, "customer", outcome);
    Ok(())
}

fn product(
    ctx: &mut Context,
    state: &mut State,
    file: &str,
    line: u64,
    item: &Value,
) -> Result<(), Problem> {
    let id = own_id(item, &["productId", "id"]);
    let tz = ctx.options.timezone.clone();
    let mut read = || -> Result<ProductOut, Outcome> {
        let row = Row::top(item, &tz)?;
        let id = row
            .required_id(&["productId", "id"])
            .map_err(Outcome::Refused)?;
        repeat(state, "product", &id, line, item, "productId")?;
        if let Some(price) = row.amount("price").map_err(Outcome::Refused)? {
            state.prices.insert(id.clone(), price);
        }
        Ok(ProductOut {
            id,
            name: text(row.get("name")),
            ..ProductOut::default()
        })
    };
    let outcome = match read() {
        Ok(p) => {
            ctx.book
                .product(&p)
                .map_err(|e| ctx.book.write_problem(e))?;
            Outcome::Mapped(p.id)
        }
        Err(o) => o,
    };
    report(ctx, file, line, &id, "product", outcome);
    Ok(())
}

/// A line's quantity, unit price and discount, exactly.
struct Priced {
    quantity: Decimal,
    unit_price: Decimal,
    discount_pct: Option<Decimal>,
}

/// Prices `total`, the final amount of `quantity` units after `discount` reais off (see the
/// module documentation); `None` when a figure overflows.
fn priced(total: Decimal, quantity: Decimal, discount: Option<Decimal>) -> Option<Priced> {
    let hundred = Decimal::ONE_HUNDRED;
    let mut list = total;
    let mut discount_pct = None;
    if let Some(d) = discount.filter(|d| !d.is_zero()) {
        let gross = total.checked_add(d)?;
        let pct = d.checked_mul(hundred)?.checked_div(gross)?.normalize();
        let back = gross
            .checked_mul(hundred.checked_sub(pct)?)?
            .checked_div(hundred)?;
        if pct.scale() <= MAX_SCALE && back == total {
            list = gross;
            discount_pct = Some(pct);
        }
    }
    let unit = (!quantity.is_zero())
        .then(|| list.checked_div(quantity))
        .flatten()
        .map(|u| u.normalize());
    Some(match unit {
        Some(u) if u.scale() <= MAX_SCALE && u.checked_mul(quantity) == Some(list) => Priced {
            quantity: quantity.normalize(),
            unit_price: u,
            discount_pct,
        },
        _ => Priced {
            quantity: Decimal::ONE,
            unit_price: list.normalize(),
            discount_pct,
        },
    })
}

fn too_large(column: &str, value: Decimal) -> Bad {
    refusal("bad_value", column, &value.to_string(), "is too large")
}

/// A line of `total` for `quantity` units.
#[allow(clippy::too_many_arguments)]
fn line_out(
    id: String,
    customer: &str,
    contract: &str,
    product: &str,
    total: Decimal,
    quantity: Decimal,
    discount: Option<Decimal>,
    period: Period,
    start: Date,
    end: Option<Date>,
    revises: Option<String>,
    column: &str,
) -> Result<LineOut, Bad> {
    let p = priced(total, quantity, discount).ok_or_else(|| too_large(column, total))?;
    Ok(LineOut {
        id,
        customer_id: customer.to_string(),
        contract_id: Some(contract.to_string()),
        product_id: product.to_string(),
        quantity: p.quantity,
        unit_price: p.unit_price,
        discount_pct: p.discount_pct,
        currency: None,
        period,
        start,
        end,
        sold_on: None,
        revises,
    })
}

/// What a readable, billable contract gives.
struct Head {
    source_id: String,
    customer: String,
    contract_id: String,
    plan: String,
    start: Date,
    end: Option<Date>,
    period: Period,
    /// The plan lines, or why there are none.
    plan_lines: Result<Vec<LineOut>, Outcome>,
    notes: Vec<String>,
    not_rebuilt: Vec<String>,
}

/// The order check shared by contracts, services and sales.
fn in_order(row: &Row, start: Date, end: Option<Date>) -> Result<(), Bad> {
    match end {
        Some(end) if end < start => Err(row.bad(
            "contradicts",
            "endDate",
            &format!("ends before it starts (startDate {start})"),
        )),
        _ => Ok(()),
    }
}

fn read_contract(
    state: &mut State,
    line: u64,
    item: &Value,
    tz: &jiff::tz::TimeZone,
    minor_units: u32,
) -> Result<Head, Outcome> {
    let row = Row::top(item, tz)?;
    let r = Outcome::Refused;
    let id = row.required_id(&["contractId", "id"]).map_err(r)?;
    let customer = row.required_id(&["customerId"]).map_err(r)?;
    let active = row.flag("isActive").map_err(r)?;
    let sales = row.count("salesQuantity").map_err(r)?;
    if active == Some(false) && sales == Some(0) {
        return Err(Outcome::Skipped(
            "not_billable",
            "inactive and never generated a sale (isActive false, salesQuantity 0)".into(),
        ));
    }
    repeat(state, "contract", &id, line, item, "contractId")?;
    let start = row
        .day("startDate", false)
        .map_err(r)?
        .ok_or_else(|| r(row.bad("bad_value", "startDate", "is missing")))?;
    let end = row.day("endDate", true).map_err(r)?;
    in_order(&row, start, end).map_err(r)?;
    if active == Some(false) && end.is_none() {
        return Err(r(row.bad(
            "contradicts",
            "endDate",
            "is empty but the contract is inactive (isActive false) and was billed: when it \
             ended is unknown",
        )));
    }
    let period = row.period("paymentFrequency").map_err(r)?;
    let plan = match row.id(&["planId"]).map_err(r)? {
        Some(p) => format!("plan-{p}"),
        None => format!("contract-{id}-plan"),
    };
    let amount = row
        .amount("amount")
        .map_err(r)?
        .ok_or_else(|| r(row.bad("bad_value", "amount", "is missing")))?;
    let discount = row.amount("discountValue").map_err(r)?;
    let readjustment = match row.get("lastContractualReadjustment") {
        None => None,
        Some(Value::Object(o)) => {
            let adj = Row {
                obj: o,
                path: "lastContractualReadjustment.".into(),
                tz,
            };
            let date = adj
                .day("date", false)
                .map_err(r)?
                .ok_or_else(|| r(adj.bad("bad_value", "date", "is missing")))?;
            let pct = adj
                .signed("percentage")
                .map_err(r)?
                .ok_or_else(|| r(adj.bad("bad_value", "percentage", "is missing")))?;
            let factor = pct
                .checked_div(Decimal::ONE_HUNDRED)
                .and_then(|p| p.checked_add(Decimal::ONE))
                .filter(|f| f.is_sign_positive() && !f.is_zero())
                .ok_or_else(|| r(adj.bad("bad_value", "percentage", "is not a readjustment")))?;
            let before = amount
                .checked_div(factor)
                .map(|b| {
                    b.round_dp_with_strategy(minor_units, RoundingStrategy::MidpointAwayFromZero)
                })
                .ok_or_else(|| r(too_large("amount", amount)))?;
            let index = text(adj.get("index")).unwrap_or_else(|| "index not given".into());
            Some((date, pct, before, index))
        }
        Some(_) => {
            return Err(r(row.bad(
                "bad_value",
                "lastContractualReadjustment",
                "is not an object",
            )))
        }
    };
    let contract_id = format!("contract-{id}");
    let mut notes = Vec::new();
    let mut not_rebuilt = Vec::new();
    let plan_lines = if amount.is_zero() {
        Err(Outcome::Skipped(
            "zero_amount",
            "the contract's own amount is 0".into(),
        ))
    } else {
        let one = |line_id: String, total, from, to, revises| {
            line_out(
                line_id,
                &customer,
                &contract_id,
                &plan,
                total,
                Decimal::ONE,
                discount,
                period,
                from,
                to,
                revises,
                "amount",
            )
            .map_err(Outcome::Refused)
        };
        match readjustment {
            Some((date, pct, before, index)) if date > start => {
                let said = format!(
                    "{contract_id}: price before the readjustment of {date} ({index} {}%) \
                     rebuilt as {before} from {}",
                    pct.normalize(),
                    amount.normalize()
                );
                if let Some(year_before) = date
                    .checked_sub(jiff::Span::new().years(1))
                    .ok()
                    .filter(|d| *d > start)
                {
                    not_rebuilt.push(format!(
                        "{}..{}: {contract_id}: readjustments before {date} are not in the \
                         Conexa API (only lastContractualReadjustment); the price rebuilt for \
                         {date} is used",
                        Month::of(start),
                        Month::of(time::day_before(year_before))
                    ));
                }
                match end {
                    Some(end) if date > end => {
                        notes.push(format!("{said} (the readjustment is after its end)"));
                        Ok(vec![one(
                            contract_id.clone(),
                            before,
                            start,
                            Some(end),
                            None,
                        )?])
                    }
                    _ => {
                        notes.push(said);
                        let first = one(
                            contract_id.clone(),
                            before,
                            start,
                            Some(time::day_before(date)),
                            None,
                        )?;
                        let second = one(
                            format!("{contract_id}@{date}"),
                            amount,
                            date,
                            end,
                            Some(contract_id.clone()),
                        )?;
                        Ok(vec![first, second])
                    }
                }
            }
            _ => Ok(vec![one(contract_id.clone(), amount, start, end, None)?]),
        }
    };
    Ok(Head {
        source_id: id,
        customer,
        contract_id,
        plan,
        start,
        end,
        period,
        plan_lines,
        notes,
        not_rebuilt,
    })
}

fn read_service(
    head: &Head,
    state: &State,
    k: usize,
    item: &Value,
    tz: &jiff::tz::TimeZone,
) -> Result<LineOut, Outcome> {
    let path = format!("complementaryServices[{k}]");
    let r = Outcome::Refused;
    let obj = item.as_object().ok_or_else(|| r(not_object(&path)))?;
    let row = Row {
        obj,
        path: format!("{path}."),
        tz,
    };
    let product = row
        .required_id(&["productOrServiceId", "productId"])
        .map_err(r)?;
    let quantity = row.amount("quantity").map_err(r)?.unwrap_or(Decimal::ONE);
    let amount = match row.amount("amount").map_err(r)? {
        Some(a) => a,
        None => state
            .prices
            .get(&product)
            .and_then(|p| p.checked_mul(quantity))
            .ok_or_else(|| {
                r(row.bad(
                    "bad_value",
                    "amount",
                    &format!("is missing, and products.json gives no price for {product}"),
                ))
            })?,
    };
    let start = row
        .day("startDate", false)
        .map_err(r)?
        .unwrap_or(head.start);
    let own_end = row.day("endDate", true).map_err(r)?;
    let end = match (own_end, head.end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    in_order(&row, start, end).map_err(r)?;
    if row.flag("isActive").map_err(r)? == Some(false) && end.is_none() {
        return Err(r(row.bad(
            "contradicts",
            "endDate",
            "is empty but the service is inactive (isActive false): when it ended is unknown",
        )));
    }
    if amount.is_zero() || quantity.is_zero() {
        return Err(Outcome::Skipped(
            "zero_amount",
            "a complementary service of amount or quantity 0".into(),
        ));
    }
    let discount = row.amount("discountValue").map_err(r)?;
    line_out(
        format!("{}-service-{}", head.contract_id, k + 1),
        &head.customer,
        &head.contract_id,
        &product,
        amount,
        quantity,
        discount,
        head.period,
        start,
        end,
        None,
        &row.col("amount"),
    )
    .map_err(r)
}

/// The outcome of a service whose contract is not written.
fn with_contract(k: usize, contract: &Outcome) -> Outcome {
    match contract {
        Outcome::Skipped(reason, detail) => {
            Outcome::Skipped(reason, format!("its contract is skipped: {detail}"))
        }
        Outcome::Refused(b) => Outcome::Refused(refusal(
            b.reason,
            &format!("complementaryServices[{k}]"),
            "",
            &format!("its contract is refused ({}: {})", b.column, b.detail),
        )),
        Outcome::Mapped(_) => Outcome::Skipped("not_used", String::new()),
    }
}

fn write_lines(
    ctx: &mut Context,
    state: &State,
    lines: &[&LineOut],
    contract: &ContractOut,
) -> Result<(), Problem> {
    ensure_customer(ctx, state, &contract.customer_id)?;
    ctx.book
        .contract(contract)
        .map_err(|e| ctx.book.write_problem(e))?;
    for l in lines {
        ctx.book.line(l).map_err(|e| ctx.book.write_problem(e))?;
    }
    Ok(())
}

fn contract(
    ctx: &mut Context,
    state: &mut State,
    file: &str,
    line: u64,
    item: &Value,
) -> Result<(), Problem> {
    let tz = ctx.options.timezone.clone();
    let id = own_id(item, &["contractId", "id"]);
    let services: Vec<&Value> = item
        .get("complementaryServices")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let head = match read_contract(state, line, item, &tz, ctx.options.currency.minor_units()) {
        Ok(head) => head,
        Err(outcome) => {
            let per_service: Vec<Outcome> = (0..services.len())
                .map(|k| with_contract(k, &outcome))
                .collect();
            report(ctx, file, line, &id, "recurring", outcome);
            for (k, o) in per_service.into_iter().enumerate() {
                report(ctx, file, line, &service_id(&id, k), "recurring", o);
            }
            return Ok(());
        }
    };
    let service_lines: Vec<Result<LineOut, Outcome>> = services
        .iter()
        .enumerate()
        .map(|(k, s)| read_service(&head, state, k, s, &tz))
        .collect();
    let mut lines: Vec<&LineOut> = Vec::new();
    if let Ok(plan) = &head.plan_lines {
        lines.extend(plan.iter());
    }
    lines.extend(service_lines.iter().filter_map(|s| s.as_ref().ok()));
    if !lines.is_empty() {
        if head.plan_lines.is_ok() {
            let plan = ProductOut {
                id: head.plan.clone(),
                kind: Some("plan".into()),
                ..ProductOut::default()
            };
            ctx.book
                .product(&plan)
                .map_err(|e| ctx.book.write_problem(e))?;
        }
        let c = ContractOut {
            id: head.contract_id.clone(),
            customer_id: head.customer.clone(),
            start: head.start,
            end: head.end,
            renewal_pricing: None,
            renewal_uplift_pct: None,
            renewal_term_months: None,
        };
        write_lines(ctx, state, &lines, &c)?;
    }
    ctx.report.notes.extend(head.notes);
    ctx.report.not_rebuilt.extend(head.not_rebuilt);
    let outcome = match head.plan_lines {
        Ok(plan) => Outcome::Mapped(
            plan.iter()
                .map(|l| l.id.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Err(o) => o,
    };
    report(ctx, file, line, &head.source_id, "recurring", outcome);
    for (k, s) in service_lines.into_iter().enumerate() {
        let o = match s {
            Ok(l) => Outcome::Mapped(l.id),
            Err(o) => o,
        };
        report(ctx, file, line, &service_id(&id, k), "recurring", o);
    }
    Ok(())
}

fn service_id(contract: &str, k: usize) -> String {
    format!("{contract}/complementaryServices[{k}]")
}

/// What a readable, billable recurring sale gives.
struct Sale {
    line: LineOut,
    /// Its own contract, when it has none in Conexa.
    contract: Option<ContractOut>,
    not_rebuilt: Option<String>,
}

/// The day after `n` periods from `start`, less one: the last day of `n` occurrences.
fn after_occurrences(start: Date, period: Period, n: u64) -> Option<Date> {
    let units = i64::try_from(n)
        .ok()?
        .checked_mul(i64::from(period.count))?;
    let span = match period.interval {
        Interval::Day => jiff::Span::new().try_days(units),
        Interval::Week => jiff::Span::new().try_weeks(units),
        Interval::Month => jiff::Span::new().try_months(units),
        Interval::Year => jiff::Span::new().try_years(units),
    }
    .ok()?;
    start.checked_add(span).ok().map(time::day_before)
}

fn read_sale(
    state: &mut State,
    line: u64,
    item: &Value,
    tz: &jiff::tz::TimeZone,
) -> Result<Sale, Outcome> {
    let row = Row::top(item, tz)?;
    let r = Outcome::Refused;
    let id = row.required_id(&["recurringSaleId", "id"]).map_err(r)?;
    let customer = row.required_id(&["customerId"]).map_err(r)?;
    let active = row.flag("isActive").map_err(r)?;
    if active == Some(false) && row.count("generatedQuantity").map_err(r)? == Some(0) {
        return Err(Outcome::Skipped(
            "not_billable",
            "inactive and never generated a sale (isActive false, generatedQuantity 0)".into(),
        ));
    }
    repeat(state, "recurring sale", &id, line, item, "recurringSaleId")?;
    let product = match (
        row.id(&["productId"]).map_err(r)?,
        row.id(&["packageId"]).map_err(r)?,
    ) {
        (Some(p), _) => p,
        (None, Some(p)) => format!("package-{p}"),
        (None, None) => {
            return Err(r(row.bad(
                "bad_value",
                "productId",
                "is missing (and there is no packageId)",
            )))
        }
    };
    let occurrences = row.count("occurrenceQuantity").map_err(r)?;
    if occurrences == Some(1) {
        return Err(Outcome::Skipped(
            "one_off",
            "a recurring sale of one occurrence (occurrenceQuantity 1)".into(),
        ));
    }
    let period = row.period("frequency").map_err(r)?;
    let start = row
        .day("startDate", false)
        .map_err(r)?
        .ok_or_else(|| r(row.bad("bad_value", "startDate", "is missing")))?;
    let end = match (row.day("endDate", true).map_err(r)?, occurrences) {
        (Some(end), _) => Some(end),
        (None, Some(n)) if n > 1 => Some(
            after_occurrences(start, period, n)
                .ok_or_else(|| r(row.bad("bad_value", "occurrenceQuantity", "is too large")))?,
        ),
        _ => None,
    };
    in_order(&row, start, end).map_err(r)?;
    if active == Some(false) && end.is_none() {
        return Err(r(row.bad(
            "contradicts",
            "endDate",
            "is empty but the recurring sale is inactive (isActive false) and was billed: when \
             it ended is unknown",
        )));
    }
    let quantity = row.amount("quantity").map_err(r)?.unwrap_or(Decimal::ONE);
    let amount = row
        .amount("amount")
        .map_err(r)?
        .ok_or_else(|| r(row.bad("bad_value", "amount", "is missing")))?;
    if amount.is_zero() || quantity.is_zero() {
        return Err(Outcome::Skipped(
            "zero_amount",
            "a recurring sale of amount or quantity 0".into(),
        ));
    }
    let discount = row.amount("discountValue").map_err(r)?;
    let own = format!("recurringSale-{id}");
    let (contract_id, contract) = match row.id(&["recurringSaleContractId"]).map_err(r)? {
        Some(c) => {
            if let Some(owner) = state.contract_customer.get(&c).filter(|o| **o != customer) {
                return Err(r(row.bad(
                    "contradicts",
                    "recurringSaleContractId",
                    &format!(
                        "is a contract of customer {owner}, not of this sale's customer {customer}"
                    ),
                )));
            }
            (format!("contract-{c}"), None)
        }
        None => (
            own.clone(),
            Some(ContractOut {
                id: own.clone(),
                customer_id: customer.clone(),
                start,
                end,
                renewal_pricing: None,
                renewal_uplift_pct: None,
                renewal_term_months: None,
            }),
        ),
    };
    let not_rebuilt = row
        .day("lastAdjustmentDate", false)
        .map_err(r)?
        .filter(|d| *d > start && end.is_none_or(|e| *d <= e))
        .map(|d| {
            format!(
                "{}..{}: {own}: its price before lastAdjustmentDate {d} is not in the Conexa API \
                 (no percentage is given); the current price is used",
                Month::of(start),
                Month::of(time::day_before(d))
            )
        });
    let line = line_out(
        own,
        &customer,
        &contract_id,
        &product,
        amount,
        quantity,
        discount,
        period,
        start,
        end,
        None,
        "amount",
    )
    .map_err(r)?;
    Ok(Sale {
        line,
        contract,
        not_rebuilt,
    })
}

fn recurring_sale(
    ctx: &mut Context,
    state: &mut State,
    file: &str,
    line: u64,
    item: &Value,
) -> Result<(), Problem> {
    let tz = ctx.options.timezone.clone();
    let id = own_id(item, &["recurringSaleId", "id"]);
    let outcome = match read_sale(state, line, item, &tz) {
        Ok(sale) => {
            ensure_customer(ctx, state, &sale.line.customer_id)?;
            if let Some(c) = &sale.contract {
                ctx.book
                    .contract(c)
                    .map_err(|e| ctx.book.write_problem(e))?;
            }
            ctx.book
                .line(&sale.line)
                .map_err(|e| ctx.book.write_problem(e))?;
            ctx.report.not_rebuilt.extend(sale.not_rebuilt);
            Outcome::Mapped(sale.line.id)
        }
        Err(o) => o,
    };
    report(ctx, file, line, &id, "recurring", outcome);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Result<Decimal, String> {
        decimal_of(&serde_json::from_str::<Value>(text).unwrap())
    }

    #[test]
    fn json_numbers_are_read_exactly_or_refused() {
        assert_eq!(number("573.48").unwrap().to_string(), "573.48");
        assert_eq!(
            number("1234567890123.45").unwrap().to_string(),
            "1234567890123.45"
        );
        assert_eq!(number("1500").unwrap().to_string(), "1500");
        assert_eq!(
            number("\"0.1000000000000000055511\"").unwrap().to_string(),
            "0.1000000000000000055511"
        );
        // Past 15 digits too: the text is read, not a float.
        assert_eq!(
            number("0.1000000000000000055511").unwrap().to_string(),
            "0.1000000000000000055511"
        );
        assert!(number("1e300").is_err());
        assert!(number("true").is_err());
    }

    #[test]
    fn prices_stay_exact() {
        let p = priced(dec("900"), Decimal::ONE, Some(dec("100"))).unwrap();
        assert_eq!(
            (p.unit_price, p.discount_pct),
            (dec("1000"), Some(dec("10")))
        );
        let p = priced(dec("1400"), Decimal::ONE, Some(dec("100"))).unwrap();
        assert_eq!((p.unit_price, p.discount_pct), (dec("1400"), None));
        let p = priced(dec("300"), dec("2"), None).unwrap();
        assert_eq!((p.quantity, p.unit_price), (dec("2"), dec("150")));
        let p = priced(dec("100"), dec("3"), None).unwrap();
        assert_eq!((p.quantity, p.unit_price), (Decimal::ONE, dec("100")));
        assert!(priced(Decimal::MAX, Decimal::ONE, Some(Decimal::MAX)).is_none());
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }
}
