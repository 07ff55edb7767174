// The fuzz harness for the converters (crates/sources), shared by the libFuzzer target
// (fuzz/fuzz_targets/convert.rs) and the corpus replay test (crates/sources/tests/fuzz_corpus.rs).
//
// The input's first byte chooses a source; the rest is split at NUL bytes into that source's
// files, in the order of `SOURCES` (a user mapping's first file is the mapping itself). The
// files are written into a folder and converted. Nothing may panic, and a conversion that
// succeeds must write a book the importer accepts (a converter never writes what `check`
// refuses: that would be a problem reported as a consequence, not at its cause).

/// `(source, files)`: `source` is a `--from` name, or `map` for a user mapping (its first file
/// is the mapping's TOML, then the data).
const SOURCES: [(&str, &[&str]); 12] = [
    (
        "stripe",
        &[
            "subscription_data.csv",
            "subscription_item_data.csv",
            "price_data.csv",
            "plan_data.csv",
            "coupon_data.csv",
            "subscription_discount_data.csv",
            "invoice_line_item_data.csv",
            "customer_data.csv",
        ],
    ),
    (
        "stripe",
        &["subscriptions.json", "invoices.json", "customers.json", "products.json"],
    ),
    (
        "recurly",
        &[
            "subscription_history_data.csv",
            "subscription_add_on_history_data.csv",
            "plan_history_data.csv",
            "account_history_data.csv",
        ],
    ),
    (
        "zuora",
        &[
            "zuora_rate_plan_charge_data.csv",
            "zuora_subscription_data.csv",
            "zuora_account_data.csv",
            "zuora_product_rate_plan_data.csv",
        ],
    ),
    (
        "conexa",
        &[
            "contracts.json",
            "recurring_sales.json",
            "customers.json",
            "products.json",
            "sales.json",
        ],
    ),
    ("baremetrics", &["subscriptions.csv"]),
    (
        "chartmogul",
        &["invoice_line_items.csv", "invoices.csv", "plans.csv", "customers.csv"],
    ),
    ("chargebee", &["subscriptions.csv", "plans.csv"]),
    ("asaas", &["subscriptions.json", "customers.json"]),
    ("iugu", &["subscriptions.json", "plans.json"]),
    ("vindi", &["subscriptions.json"]),
    ("map", &["mapping.toml", "data.csv", "customers.csv"]),
];

/// Converts `data` as [`SOURCES`] reads it; returns whether the conversion succeeded.
pub fn fuzz_convert(data: &[u8]) -> bool {
    let Some((&choice, rest)) = data.split_first() else {
        return false;
    };
    let (source, names) = SOURCES[choice as usize % SOURCES.len()];
    let input = tempfile::tempdir().expect("a temporary folder");
    let mut parts = rest.split(|&b| b == 0);
    let mut mapping = None;
    for (k, name) in names.iter().enumerate() {
        let Some(bytes) = parts.next() else { break };
        if source == "map" && k == 0 {
            mapping = Some(String::from_utf8_lossy(bytes).into_owned());
            continue;
        }
        std::fs::write(input.path().join(name), bytes).expect("a file written");
    }
    let spec = if source == "map" {
        let text = mapping.unwrap_or_default();
        match expansa_sources::mapping::Mapping::parse("mapping.toml", &text) {
            Ok(m) => expansa_sources::Spec::Mapping(m),
            Err(_) => return false,
        }
    } else {
        expansa_sources::Spec::Source(
            expansa_sources::SourceKind::from_name(source).expect("a known source"),
        )
    };
    let out = tempfile::tempdir().expect("a temporary folder");
    let options = expansa_sources::Options::default();
    let from = expansa_sources::Input::new(input.path(), options.encoding);
    match expansa_sources::convert_into(&spec, &from, &options, out.path()) {
        Ok(_) => {
            let import = expansa_import::ImportOptions::default();
            if let Err(e) =
                expansa_import::read_book(out.path(), &import, &expansa_import::NoProgress)
            {
                panic!(
                    "{source}: the conversion succeeded but wrote a book the importer refuses: {:?}",
                    e.0
                );
            }
            true
        }
        Err(_) => false,
    }
}
