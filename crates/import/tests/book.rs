//! What the importer keeps of a book: defaults, attributes and references, read from memory.

use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_ledger::{Decimal, ProductKind};
use std::str::FromStr;

#[test]
fn keeps_every_table_with_its_defaults() {
    let files: [(&str, &[u8]); 8] = [
        (
            "subscriptions.csv",
            b"id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,start_date,end_date,sold_on,revises\n\
              a,c1,,basic,,100,,2024-01-01,2024-03-31,,\n\
              b,c1,k9,pro,2,150.50,10,2024-04-01,,2024-03-20,a\n",
        ),
        (
            "customers.csv",
            b"id,name,registered_on,segment\nc1,Padaria,2023-12-01,smb\nc2,,,\n",
        ),
        (
            "products.csv",
            b"id,name,family,tier,kind,list_price,price_term_months\nbasic,Basic,core,1,plan,1200,\npro,Pro,core,2,plan,,1\nbi,BI,,,addon,,\n",
        ),
        (
            "contracts.csv",
            b"id,customer_id,start_date,end_date,renewal_pricing,renewal_uplift_pct\nk9,c1,2024-04-01,,uplift,5\n",
        ),
        (
            "marketing_spend.csv",
            b"month,channel,amount\n2024-01,ads,1000\n",
        ),
        (
            "usage.csv",
            b"customer_id,product_id,month,used,included\nc1,pro,2024-05,9,10\n",
        ),
        (
            "offers.csv",
            b"id,customer_id,product_id,kind,offered_on,outcome,decided_on,line_id\no1,c1,pro,upsell,2024-03-01,accepted,2024-03-20,b\n",
        ),
        (
            "contracted_prices.csv",
            b"customer_id,product_id,discount_pct\nc2,bi,15\n",
        ),
    ];
    let book = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{:?}", e.0));
    let lines = &book.lines;
    let (a, b) = (lines.ids.find("a").unwrap(), lines.ids.find("b").unwrap());
    assert_eq!(
        lines.contract_id(a),
        "a",
        "contract defaults to the line id"
    );
    assert_eq!(lines.contract_id(b), "k9");
    assert_eq!(
        lines.sold_on(a).to_string(),
        "2024-01-01",
        "sold_on defaults to start"
    );
    assert_eq!(lines.sold_on(b).to_string(), "2024-03-20");
    let line_b = &lines.items[b as usize];
    assert_eq!(line_b.revises(), Some(a));
    assert_eq!(line_b.quantity.get(), Decimal::from(2));
    assert_eq!(
        line_b.mrr().round_dp(2),
        Decimal::from_str("270.90").unwrap()
    );
    assert_eq!(
        lines.items[a as usize].end.unwrap().to_string(),
        "2024-03-31"
    );

    let customers = &book.customers;
    let c1 = customers.ids.find("c1").unwrap() as usize;
    let c2 = customers.ids.find("c2").unwrap() as usize;
    assert_eq!(customers.name.get_opt(c1), Some("Padaria"));
    assert_eq!(customers.segment.get_opt(c1), Some("smb"));
    assert_eq!(customers.name.get_opt(c2), None);
    assert_eq!(customers.country.get_opt(c1), None, "no country column");
    assert_eq!(customers.registered_on[c2], None);

    let products = &book.products;
    let family = |id: &str| {
        let p = &products.items[products.ids.find(id).unwrap() as usize];
        products.families.get(p.family).to_string()
    };
    assert_eq!(family("basic"), "core");
    assert_eq!(family("pro"), "core");
    assert_eq!(family("bi"), "bi", "the family defaults to the product id");
    let pro = &products.items[products.ids.find("pro").unwrap() as usize];
    assert_eq!((pro.tier, pro.price_term_months), (Some(2), 1));
    let basic = &products.items[products.ids.find("basic").unwrap() as usize];
    assert_eq!(
        basic.price_term_months, 12,
        "price term defaults to 12 months"
    );
    assert_eq!(
        products.items[products.ids.find("bi").unwrap() as usize].kind,
        ProductKind::Addon
    );

    assert_eq!(book.contracts.len(), 1);
    assert_eq!(book.contracts[0].renewal_uplift_pct, Some(Decimal::from(5)));
    assert_eq!(book.marketing_spend[0].amount, Decimal::from(1000));
    assert_eq!(book.usage[0].used, Decimal::from(9));
    assert_eq!(book.offers[0].line, Some(b));
    assert_eq!(book.contracted_prices.len(), 1);
}

#[test]
fn large_files_cross_chunk_boundaries_with_exact_line_numbers() {
    // Enough rows for several 1 MiB chunks, one quoted field with a newline, and one bad
    // value far down: the problem must name its exact line.
    let mut subs = String::from("id,customer_id,product_id,unit_price,start_date,name\n");
    for i in 0..60_000 {
        let price = if i == 54_321 {
            "x".to_string()
        } else {
            format!("{}.50", i % 997)
        };
        let name = if i == 7 { "\"two\nlines\"" } else { "plain" };
        subs.push_str(&format!(
            "l{i},c{},p{},{price},2024-01-01,{name}\n",
            i % 5000,
            i % 7
        ));
    }
    let files: [(&str, &[u8]); 1] = [("subscriptions.csv", subs.as_bytes())];
    let err = read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .err()
        .expect("one bad value refuses the book");
    let problems: Vec<String> = err.0.iter().map(|p| p.to_string()).collect();
    // Header is line 1, row i is line i + 2, plus one for the quoted newline after row 7.
    assert_eq!(
        problems,
        ["subscriptions.csv:54324: unit_price: x: not a decimal number (like 1234.56)"]
    );
}
