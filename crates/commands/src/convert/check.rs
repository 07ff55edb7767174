//! The check of a written book, part by part: the book's customers spread over parts by the
//! hash of their id, each part (its customers, their lines and contracts, with the book's
//! products and rates) read by the importer (`expansa_import::read_book`, the one reader) and
//! its MRR computed by the movement report, the MRRs summed. Memory is then one part's,
//! whatever the book's size.
//!
//! What the importer checks across customers is checked over the whole book by a pass of its
//! own, bucketed by the hash of each id: customer, line and contract ids are unique, and a
//! line's contract is its customer's. A problem is told at the book's own file and line.

use super::heap;
use expansa_import::{
    read_book, shown, BookErrors, ImportOptions, NoProgress, Problem, Problems, Records,
    TextEncoding,
};
use expansa_ledger::{Book, Date, Money, Month};
use expansa_sources::partition::{self, WorkDir};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bytes of the customer-keyed files per part (a part read by the importer takes a few times
/// that in memory).
const BYTES_PER_PART: u64 = 16 << 20;

/// The book's files whose rows are a customer's, with the column naming the customer (the
/// contracts first: the id buckets then hold each contract's customer before the lines that
/// name it).
const BY_CUSTOMER: [(&str, &str); 3] = [
    ("contracts.csv", "customer_id"),
    ("customers.csv", "id"),
    ("subscriptions.csv", "customer_id"),
];

/// Id buckets per part: each holds a share of the book's ids small beside a part.
const ID_BUCKETS_PER_PART: usize = 4;

/// The most parts (the split writes to two files per part and to every id bucket at once:
/// 384 files open, well under the usual limit of 1024).
const MAX_PARTS: usize = 64;

/// Problems of a part that the whole-book pass reports instead (with the whole book's lines).
const WHOLE_BOOK_REASONS: [&str; 4] = [
    "duplicate customer id (first on line ",
    "duplicate line id (first on line ",
    "duplicate contract id (first on line ",
    "contract belongs to another customer (",
];

/// The MRR at the end of `day`'s month of the book in `dir` and the customers paying then;
/// the importer's problems otherwise. `parts`: how many parts (from the book's size when
/// `None`, at most [`MAX_PARTS`]; one reads the book whole).
pub(super) fn check(
    dir: &Path,
    options: &ImportOptions,
    parts: Option<usize>,
    day: Date,
) -> Result<(Money, usize), BookErrors> {
    let files: Vec<PathBuf> = BY_CUSTOMER.iter().map(|(f, _)| dir.join(f)).collect();
    let k = parts
        .unwrap_or_else(|| {
            partition::buckets_for(
                partition::size_of(files.iter().map(PathBuf::as_path)),
                BYTES_PER_PART,
            )
        })
        .min(MAX_PARTS);
    if k <= 1 {
        return read_book(dir, options, &NoProgress).map(|book| mrr_on(&book, day));
    }
    let io = |e: io::Error| cannot(dir, e);
    heap::release_freed();
    let work = WorkDir::create(dir, ".check-parts").map_err(io)?;
    let split = split(dir, work.path(), k)?;
    let mut problems = Problems::default();
    // Problems the importer counted beyond those it listed.
    let mut more = 0;
    let (mut mrr, mut customers) = (Money::ZERO, 0usize);
    for part in &split.parts {
        match read_book(part, options, &NoProgress) {
            Ok(book) => {
                let (m, c) = mrr_on(&book, day);
                mrr += m;
                customers = customers.saturating_add(c);
            }
            Err(e) => {
                let whole =
                    |p: &Problem| WHOLE_BOOK_REASONS.iter().any(|r| p.reason.starts_with(r));
                let kept: Vec<Problem> = e.0.into_iter().filter(|p| !whole(p)).collect();
                problems.extend(at_book_lines(part, kept).map_err(io)?);
                more += e.1;
            }
        }
        std::fs::remove_dir_all(part).map_err(io)?;
        heap::release_freed();
    }
    for ids in &split.ids {
        problems.extend(across_customers(ids).map_err(io)?);
        std::fs::remove_file(ids).map_err(io)?;
    }
    if problems.is_empty() && more == 0 {
        return Ok((mrr, customers));
    }
    let mut errors = problems.into_errors();
    errors.1 += more;
    Err(errors)
}

/// The written book in `dir` cannot be checked (a work file cannot be written or read).
fn cannot(dir: &Path, e: io::Error) -> BookErrors {
    vec![Problem::new(
        &dir.display().to_string(),
        0,
        "folder",
        "",
        &format!("the written book cannot be checked: {e}"),
    )]
    .into()
}

/// The MRR at the end of `day`'s month and the customers paying then, as the movement
/// report gives them (one computation of the figure: `movements` prints the same).
fn mrr_on(book: &Book, day: Date) -> (Money, usize) {
    let month = Month::of(day);
    let query = expansa_movements::Query {
        from: month,
        to: month,
        rules: expansa_movements::Rules::Conexa,
    };
    let report = expansa_movements::report(book, &query);
    report.months.first().map_or((Money::ZERO, 0), |m| {
        (
            m.mrr_end,
            usize::try_from(m.customers_end).unwrap_or(usize::MAX),
        )
    })
}

/// A book split into parts.
struct Split {
    /// Each part's folder: a book of its own.
    parts: Vec<PathBuf>,
    /// Each id bucket's file (`kind,id,customer,line` rows: see [`across_customers`]).
    ids: Vec<PathBuf>,
}

/// Beside each part file: `part_line,book_line` per row, to tell its problems at the book's
/// lines.
fn lines_file(part_file: &Path) -> PathBuf {
    part_file.with_extension("lines")
}

/// Splits the book in `dir` into `k` parts in `work`: the customer-keyed files by customer,
/// the others (products, rates) linked (or copied) into every part; and writes the id buckets.
fn split(dir: &Path, work: &Path, k: usize) -> Result<Split, BookErrors> {
    let io = |e: io::Error| cannot(dir, e);
    split_into(dir, work, k)
        .map_err(io)?
        .map_err(|p| vec![p].into())
}

/// [`split`]: an I/O error, or the problem of a file the importer's reader refuses.
fn split_into(dir: &Path, work: &Path, k: usize) -> io::Result<Result<Split, Problem>> {
    let parts: Vec<PathBuf> = (0..k).map(|i| work.join(format!("part-{i}"))).collect();
    for p in &parts {
        std::fs::create_dir(p)?;
    }
    let ids: Vec<PathBuf> = (0..k * ID_BUCKETS_PER_PART)
        .map(|i| work.join(format!("ids-{i}.csv")))
        .collect();
    let mut id_writers = ids
        .iter()
        .map(|p| Ok(csv::Writer::from_writer(BufWriter::new(File::create(p)?))))
        .collect::<io::Result<Vec<_>>>()?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let shared = entry.file_type()?.is_file()
            && !name.starts_with('.')
            && name != expansa_sources::LOG_FILE
            && !BY_CUSTOMER.iter().any(|(f, _)| *f == name);
        if shared {
            for p in &parts {
                let to = p.join(&name);
                if std::fs::hard_link(entry.path(), &to).is_err() {
                    std::fs::copy(entry.path(), &to)?;
                }
            }
        }
    }
    for (file, customer_column) in BY_CUSTOMER {
        let path = dir.join(file);
        if path.is_file() {
            if let Err(p) = split_file(&path, file, customer_column, &parts, &mut id_writers)? {
                return Ok(Err(p));
            }
        }
    }
    for mut w in id_writers {
        w.flush()?;
    }
    Ok(Ok(Split { parts, ids }))
}

/// One customer-keyed file split into the parts (read by the importer's own reader), its ids
/// into the id buckets.
fn split_file(
    path: &Path,
    file: &str,
    customer_column: &str,
    parts: &[PathBuf],
    ids: &mut [csv::Writer<BufWriter<File>>],
) -> io::Result<Result<(), Problem>> {
    let (k, id_buckets) = (parts.len(), ids.len());
    let reader = BufReader::new(File::open(path)?);
    let mut records = match Records::new(file, reader, TextEncoding::UTF_8) {
        Ok(r) => r,
        Err(p) => return Ok(Err(p)),
    };
    let header = records.header().to_vec();
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (id, customer, contract) = (column("id"), column(customer_column), column("contract_id"));
    let mut out = Vec::with_capacity(k);
    for p in parts {
        let part_file = p.join(file);
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::new(File::create(&part_file)?));
        w.write_record(&header)?;
        let lines = BufWriter::new(File::create(lines_file(&part_file))?);
        // The part's next line: its header is line 1.
        out.push((w, lines, 2u64));
    }
    let kind = match file {
        "customers.csv" => "customer",
        "subscriptions.csv" => "line",
        _ => "contract",
    };
    loop {
        let record = match records.next_shared() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(p) => return Ok(Err(p)),
        };
        let line = record.line;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map_or("", str::trim);
        let (row_id, row_customer) = (get(id), get(customer));
        let Some((w, lines, next)) = out.get_mut(partition::bucket_of(row_customer, k)) else {
            continue;
        };
        w.write_record(record.iter())?;
        writeln!(lines, "{next},{line}")?;
        *next += 1 + record
            .iter()
            .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
            .sum::<u64>();
        if !row_id.is_empty() {
            if let Some(w) = ids.get_mut(partition::bucket_of(row_id, id_buckets)) {
                w.write_record([kind, row_id, row_customer, &line.to_string()])?;
            }
        }
        if kind == "line" {
            // The contract a line names (its own id when it names none).
            let named = Some(get(contract))
                .filter(|c| !c.is_empty())
                .unwrap_or(row_id);
            if let Some(w) = ids.get_mut(partition::bucket_of(named, id_buckets)) {
                w.write_record(["names", named, row_customer, &line.to_string()])?;
            }
        }
    }
    for (mut w, mut lines, _) in out {
        w.flush()?;
        lines.flush()?;
    }
    Ok(Ok(()))
}

/// The problems of a part told at the book's lines (its `.lines` files say which).
fn at_book_lines(part: &Path, problems: Vec<Problem>) -> io::Result<Vec<Problem>> {
    let mut maps: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for (file, _) in BY_CUSTOMER {
        let path = lines_file(&part.join(file));
        if !problems.iter().any(|p| p.file == file) || !path.is_file() {
            continue;
        }
        let mut map = Vec::new();
        for row in BufReader::new(File::open(path)?).lines() {
            let row = row?;
            if let Some((a, b)) = row.split_once(',') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    map.push((a, b));
                }
            }
        }
        maps.insert(file.to_string(), map);
    }
    Ok(problems
        .into_iter()
        .map(|mut p| {
            if let Some(map) = maps.get(&p.file).filter(|_| p.line >= 2) {
                // The row starting on or before the problem's line (a row may span lines).
                let at = map.partition_point(|&(start, _)| start <= p.line);
                if let Some(&(start, line)) = at.checked_sub(1).and_then(|i| map.get(i)) {
                    p.line = line + (p.line - start);
                }
            }
            p
        })
        .collect())
}

/// The whole book's checks across customers, over one id bucket (every row of an id is in
/// the same bucket, the contracts' rows first, then the customers', then the lines' and the
/// contracts they name): duplicate customer, line and contract ids, and lines naming a
/// contract of another customer; said as the importer says them, at the book's lines.
fn across_customers(path: &Path) -> io::Result<Vec<Problem>> {
    let mut problems = Vec::new();
    // The first line of each id of the kind being read (customers, then lines).
    let (mut seen, mut seen_kind): (HashMap<Box<str>, u64>, String) = Default::default();
    // Each contract's first line and customer.
    let mut owner: HashMap<Box<str>, (u64, Box<str>)> = HashMap::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)?;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let (Some(kind), Some(id), Some(customer), Some(line)) =
            (record.get(0), record.get(1), record.get(2), record.get(3))
        else {
            continue;
        };
        let line: u64 = line.parse().unwrap_or(0);
        let duplicate = |file: &str, what: &str, first: u64| {
            Problem::new(
                file,
                line,
                "id",
                id,
                &format!("duplicate {what} id (first on line {first})"),
            )
        };
        match kind {
            "contract" => match owner.get(id) {
                Some(&(first, _)) => problems.push(duplicate("contracts.csv", "contract", first)),
                None => {
                    owner.insert(id.into(), (line, customer.into()));
                }
            },
            "names" => {
                if let Some((_, c)) = owner.get(id).filter(|(_, c)| **c != *customer) {
                    problems.push(Problem::new(
                        "subscriptions.csv",
                        line,
                        "contract_id",
                        id,
                        &format!("contract belongs to another customer ({})", shown(c)),
                    ));
                }
            }
            _ => {
                if seen_kind != kind {
                    seen = HashMap::new();
                    seen_kind = kind.to_string();
                }
                let (file, what) = match kind {
                    "customer" => ("customers.csv", "customer"),
                    _ => ("subscriptions.csv", "line"),
                };
                match seen.get(id) {
                    Some(&first) => problems.push(duplicate(file, what, first)),
                    None => {
                        seen.insert(id.into(), line);
                    }
                }
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expansa_ledger::Currency;

    const CUSTOMERS: &str = "id,name,registered_on,segment,country,channel\n";
    const LINES: &str = "id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,\
        currency,billing_period_months,billing_interval,billing_interval_count,start_date,\
        end_date,sold_on,revises\n";
    const CONTRACTS: &str = "id,customer_id,start_date,end_date,renewal_pricing,\
        renewal_uplift_pct,renewal_term_months\n";

    /// A change to a book's subscriptions and contracts.
    type Edit = dyn Fn(&mut String, &mut String);

    /// A book of 12 customers: two lines each (the second revising the first), a contract
    /// each, with `edit` applied to the subscriptions' and contracts' text.
    fn book(edit: impl Fn(&mut String, &mut String)) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (mut customers, mut lines, mut contracts) = (
            CUSTOMERS.to_string(),
            LINES.to_string(),
            CONTRACTS.to_string(),
        );
        for c in 0..12 {
            customers.push_str(&format!("c{c},Customer {c},2024-01-01,,,\n"));
            lines.push_str(&format!(
                "l{c},c{c},k{c},p,{},10.5,,,1,,,2024-01-01,,,\n",
                1 + c % 3
            ));
            lines.push_str(&format!(
                "l{c}b,c{c},k{c},p,{},12,10,,1,,,2024-04-01,,,l{c}\n",
                1 + c % 3
            ));
            contracts.push_str(&format!("k{c},c{c},2024-01-01,,,,\n"));
        }
        edit(&mut lines, &mut contracts);
        let files = [
            ("customers.csv", customers),
            ("subscriptions.csv", lines),
            ("contracts.csv", contracts),
            ("products.csv", "id,name\np,Plan\n".to_string()),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn checked(dir: &Path, parts: usize) -> Result<(String, usize), Vec<String>> {
        let options = ImportOptions {
            currency: Currency::from_code("USD").unwrap(),
            ..ImportOptions::default()
        };
        let day: Date = "2024-06-30".parse().unwrap();
        let r = check(dir, &options, Some(parts), day)
            .map(|(m, c)| (m.as_decimal().normalize().to_string(), c))
            .map_err(|e| {
                let mut p: Vec<String> = e.0.iter().map(ToString::to_string).collect();
                p.push(format!("more: {}", e.1));
                p
            });
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "work files left: {left:?}");
        r
    }

    /// Two customers of different parts (of `k`).
    fn apart(k: usize) -> (usize, usize) {
        let part = |c: usize| partition::bucket_of(&format!("c{c}"), k);
        (1..12)
            .find(|&c| part(c) != part(0))
            .map(|c| (0, c))
            .expect("12 customers in one part of 4")
    }

    #[test]
    fn a_book_checked_in_parts_has_the_mrr_of_the_whole() {
        let dir = book(|_, _| {});
        let whole = checked(dir.path(), 1).unwrap();
        // 12 customers: quantities 1, 2, 3 (4 each) at 12 less 10%: (1 + 2 + 3) × 4 × 10.80.
        assert_eq!(whole, ("259.2".to_string(), 12));
        for parts in [2, 3, 4, 7] {
            assert_eq!(
                checked(dir.path(), parts),
                Ok(whole.clone()),
                "{parts} parts"
            );
        }
    }

    /// What the importer finds across customers is found in parts, said the same and at the
    /// book's own lines.
    #[test]
    fn problems_across_parts_are_found_at_the_books_lines() {
        let (a, b) = apart(4);
        let cases: Vec<(&str, Box<Edit>)> = vec![
            (
                "a line id of two customers",
                Box::new(move |lines: &mut String, _: &mut String| {
                    *lines = lines.replace(&format!("l{b}b,"), &format!("l{a}b,"));
                }),
            ),
            (
                "a contract id of two customers",
                Box::new(move |_: &mut String, contracts: &mut String| {
                    *contracts = contracts.replace(&format!("k{b},"), &format!("k{a},"));
                }),
            ),
            (
                "a line naming another customer's contract",
                Box::new(move |lines: &mut String, _: &mut String| {
                    *lines =
                        lines.replace(&format!("l{b}b,c{b},k{b},"), &format!("l{b}b,c{b},k{a},"));
                }),
            ),
            (
                "a value the importer refuses",
                Box::new(move |lines: &mut String, _: &mut String| {
                    *lines = lines.replace(
                        &format!("l{b}b,c{b},k{b},p,"),
                        &format!("l{b}b,c{b},k{b},p,x"),
                    );
                }),
            ),
            (
                "a line of a customer the book does not have",
                Box::new(|lines: &mut String, _: &mut String| {
                    lines.push_str("lz,zz,,p,1,5,,,1,,,2024-01-01,,,\n");
                }),
            ),
        ];
        for (what, edit) in cases {
            let dir = book(edit);
            let whole = checked(dir.path(), 1).expect_err(what);
            assert!(whole.len() > 1, "{what}: {whole:?}");
            for parts in [2, 4, 7] {
                assert_eq!(
                    checked(dir.path(), parts),
                    Err(whole.clone()),
                    "{what}: {parts} parts"
                );
            }
        }
    }
}
