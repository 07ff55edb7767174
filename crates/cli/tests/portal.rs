//! The customer portal (docs/portal.md) end to end, on SQLite and PostgreSQL: links made,
//! listed and revoked with `expansa portal`; the page a link opens (its customer only); the
//! live price equal to `expansa quote amend --format json`; and every refusal: expired, revoked
//! or forged tokens (401, nothing shown), another customer's contract, a tampered price, a
//! quantity below the one held, a product not offered, an ended contract; staff endpoints
//! refuse a portal token. Then the page in headless Chromium, on a phone's screen.

mod common;

use common::{
    browser_ready, expansa, http, private_server, run_browser, screenshots, store_urls, Answer,
    Killed,
};
use serde_json::{json, Value};
use std::path::Path;

/// Today in UTC, and the day `days` from it, as the server and the CLI read them.
fn day(days: i64) -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

/// A book whose contracts run around today: Alfa (c1) holds 5 SEAT on KA and held one on KOLD,
/// which ended over a year ago; Beta (c2) and Gama (c3) hold SEAT and PAYROLL, so the model
/// recommends PAYROLL to Alfa (at Alfa's contracted 100.00); nobody holds EXTRA.
fn write_book(dir: &Path) {
    let (start, end) = (day(-100), day(265));
    let files = [
        (
            "customers.csv",
            "id,name,registered_on,segment\n\
             c1,Alfa Contabilidade,2020-01-01,accounting\n\
             c2,Beta Cowork,2020-01-01,coworking\n\
             c3,Gama SaaS,2020-01-01,saas\n"
                .to_string(),
        ),
        (
            "products.csv",
            "id,name,family,tier,kind,list_price,price_term_months\n\
             SEAT,Seat,SEAT,,plan,420.00,12\n\
             PAYROLL,Payroll add-on,PAYROLL,,addon,120.00,12\n\
             EXTRA,Extra module,EXTRA,,addon,999.00,12\n"
                .to_string(),
        ),
        (
            "contracted_prices.csv",
            format!(
                "customer_id,product_id,price,discount_pct,valid_from,valid_to\n\
                 c1,PAYROLL,100.00,,{},\n",
                day(-400)
            ),
        ),
        (
            "contracts.csv",
            format!(
                "id,customer_id,start_date,end_date,renewal_pricing,renewal_uplift_pct,renewal_term_months\n\
                 KA,c1,{start},{end},same,,\n\
                 KB,c2,{start},{end},same,,\n\
                 KC,c3,{start},{end},same,,\n\
                 KOLD,c1,{},{},same,,\n",
                day(-800),
                day(-436)
            ),
        ),
        (
            "subscriptions.csv",
            format!(
                "id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,billing_period_months,start_date,end_date\n\
                 LA1,c1,KA,SEAT,5,398.45,0,12,{start},{end}\n\
                 LB1,c2,KB,SEAT,3,420.00,0,12,{start},{end}\n\
                 LB2,c2,KB,PAYROLL,1,120.00,0,12,{start},{end}\n\
                 LC1,c3,KC,SEAT,2,420.00,0,12,{start},{end}\n\
                 LC2,c3,KC,PAYROLL,2,120.00,0,12,{start},{end}\n\
                 LOLD,c1,KOLD,SEAT,1,400.00,0,12,{},{}\n",
                day(-800),
                day(-436)
            ),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// `expansa ARGS...`: its exit code, standard output and standard error.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = expansa().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A new link's token, from `expansa portal link`'s first line (`/portal/TOKEN/`).
fn link(db: &str, customer: &str) -> String {
    let (code, out, err) = run(&["portal", "link", "--customer", customer, "--db", db]);
    assert_eq!(code, 0, "{err}");
    let path = out.lines().next().unwrap();
    path.strip_prefix("/portal/")
        .and_then(|p| p.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string()
}

/// A store at `db` holding the book of `dir`.
fn imported(db: &str, dir: &Path) {
    let (code, _, err) = run(&["import", "--db", db, "--data", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// `expansa quote amend --format json` of contract KA today to 7 SEAT and 1 PAYROLL: what the
/// page prices for the same change.
fn ka_quote(db: &str) -> Value {
    let (code, cli, err) = run(&[
        "quote",
        "amend",
        "--db",
        db,
        "--contract",
        "KA",
        "--effective",
        &day(0),
        "--set",
        "SEAT:7",
        "--set",
        "PAYROLL:1",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&cli).unwrap()
}

fn quote(base: &str, token: &str, body: &Value) -> Answer {
    http(
        base,
        "POST",
        &format!("/portal/{token}/quote"),
        &[],
        &body.to_string(),
    )
}

fn events(db: &str) -> usize {
    let (code, out, err) = run(&["events", "--db", db, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn portal_links_pages_prices_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    for db in store_urls(dir.path()) {
        imported(&db, &book);
        // Links: a size past its limit and an unknown customer are refused before anything.
        let (code, _, err) = run(&[
            "portal",
            "link",
            "--customer",
            "c1",
            "--days",
            "91",
            "--db",
            &db,
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("--days 91: a portal link lives 1 to 90 days"),
            "{err}"
        );
        let (code, _, err) = run(&["portal", "link", "--customer", "NOBODY", "--db", &db]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("unknown customer \"NOBODY\""), "{err}");
        let alfa = link(&db, "c1");
        let beta = link(&db, "c2");
        let (code, listed, _) = run(&["portal", "list", "--db", &db]);
        assert_eq!(code, 0);
        let alfa_id = alfa.split_once('.').unwrap().0;
        assert!(
            listed.contains(alfa_id) && listed.contains("c2"),
            "{listed}"
        );
        assert!(
            !listed.contains(alfa.split_once('.').unwrap().1),
            "the secret is never listed"
        );
        let before = events(&db);

        let (child, base) = private_server(&db, &[]);
        let _server = Killed(child);

        // The page of Alfa: its contracts, lines, renewal, and what it may add; nothing of Beta.
        let page = http(&base, "GET", &format!("/portal/{alfa}/"), &[], "");
        assert_eq!(page.status, 200, "{}", page.body);
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(page.header("cache-control"), Some("no-store"));
        for shown in [
            "Alfa Contabilidade",
            "Contrato KA",
            "Contrato KOLD",
            "name=\"SEAT\"",
            "name=\"PAYROLL\"",
            "recomendado para você",
            "R$ 100,00",
            "R$ 398,45",
            &day(266),
            "lang=\"pt-BR\"",
        ] {
            assert!(
                page.body.contains(shown),
                "{db}: the page lacks {shown}: {}",
                page.body
            );
        }
        for hidden in ["Beta", "Gama", "KB", "KC", "EXTRA", "<script>"] {
            assert!(!page.body.contains(hidden), "{db}: the page shows {hidden}");
        }
        let english = http(&base, "GET", &format!("/portal/{alfa}/?lang=en"), &[], "");
        assert!(english.body.contains("Your subscription") && english.body.contains("R$398.45"));
        let accepted = http(
            &base,
            "GET",
            &format!("/portal/{alfa}/"),
            &[("Accept-Language", "en-US,en;q=0.9")],
            "",
        );
        assert!(accepted.body.contains("lang=\"en\""), "{}", accepted.body);
        let js = http(&base, "GET", "/portal/assets/portal.js", &[], "");
        assert_eq!(js.status, 200);
        assert!(js
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/javascript"));

        // The live price is `quote amend`'s JSON, to the cent: 2 more SEAT and 1 PAYROLL.
        let wanted = json!({"contract": "KA", "items": [
            {"product": "SEAT", "quantity": 7}, {"product": "PAYROLL", "quantity": 1}]});
        let priced = quote(&base, &alfa, &wanted);
        assert_eq!(priced.status, 200, "{}", priced.body);
        let cli = ka_quote(&db);
        assert_eq!(priced.json(), cli, "{db}");
        assert_eq!(cli["lines"][0]["unit_price"], "398.45");
        assert_eq!(
            cli["lines"][1]["unit_price"], "100.00",
            "Alfa's contracted price"
        );
        assert_eq!(cli["lines"].as_array().unwrap().len(), 2);

        // Refusals, each with a clear message, nothing applied.
        let refusals = [
            // Another customer's contract, and one that does not exist: the same answer.
            (
                json!({"contract": "KB", "items": [{"product": "SEAT", "quantity": 9}]}),
                404,
                "there is no contract \"KB\" on your page",
            ),
            (
                json!({"contract": "KZ", "items": [{"product": "SEAT", "quantity": 9}]}),
                404,
                "there is no contract \"KZ\" on your page",
            ),
            // A price sent along (tampered): not a field the portal takes.
            (
                json!({"contract": "KA", "items": [{"product": "PAYROLL", "quantity": 1, "unit_price": "1.00"}]}),
                400,
                "unknown field `unit_price`",
            ),
            (
                json!({"contract": "KA", "price": "1.00", "items": [{"product": "PAYROLL", "quantity": 1}]}),
                400,
                "unknown field `price`",
            ),
            (
                json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 4}]}),
                400,
                "Seat: 4 is below the 5 you hold; to reduce it, talk to us",
            ),
            (
                json!({"contract": "KA", "items": [{"product": "EXTRA", "quantity": 1}]}),
                403,
                "EXTRA is not offered to you on contract KA",
            ),
            (
                json!({"contract": "KOLD", "items": [{"product": "SEAT", "quantity": 2}]}),
                400,
                "contract KOLD ended on",
            ),
            (
                json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 100001}]}),
                400,
                "at most 100000",
            ),
            (
                json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": -1}]}),
                400,
                "body:",
            ),
            (
                json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 5}]}),
                400,
                "nothing to price",
            ),
        ];
        for (body, status, message) in refusals {
            let answer = quote(&base, &alfa, &body);
            assert_eq!(answer.status, status, "{db} {body}: {}", answer.body);
            let said = answer.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(said.contains(message), "{db} {body}: {said}");
            assert!(!answer.body.contains("Beta") && !answer.body.contains("LB1"));
        }
        // Beta's own token prices Beta's contract.
        let theirs = quote(
            &base,
            &beta,
            &json!({"contract": "KB", "items": [{"product": "SEAT", "quantity": 4}]}),
        );
        assert_eq!(theirs.status, 200, "{}", theirs.body);

        // Forged, malformed and staff credentials: 401, nothing shown.
        let (_, secret) = alfa.split_once('.').unwrap();
        let key = common::api_key(&db, "staff");
        let forged = [
            format!("{alfa_id}.{}", "0".repeat(secret.len())),
            alfa_id.to_string(),
            format!("{}.{secret}", beta.split_once('.').unwrap().0),
            key.clone(),
            "x".repeat(5000),
        ];
        for token in &forged {
            let page = http(&base, "GET", &format!("/portal/{token}/"), &[], "");
            assert_eq!(page.status, 401, "{token}");
            assert!(
                !page.body.contains("Alfa") && !page.body.contains("KA"),
                "{}",
                page.body
            );
            // A page a browser shows, not JSON, and kept by no cache.
            assert!(
                page.header("content-type")
                    .is_some_and(|t| t.starts_with("text/html")),
                "{:?}",
                page.headers
            );
            assert_eq!(page.header("cache-control"), Some("no-store"));
            let priced = quote(&base, token, &wanted);
            assert_eq!(priced.status, 401, "{token}");
            assert_eq!(priced.header("cache-control"), Some("no-store"));
        }
        // A staff session or key opens no portal page without a token.
        let bare = http(
            &base,
            "GET",
            "/portal/",
            &[("Authorization", &format!("Bearer {key}"))],
            "",
        );
        assert!(bare.status == 404 || bare.status == 401, "{}", bare.status);
        // Staff endpoints never take a portal token.
        for path in [
            "/api/v1/customers",
            "/api/v1/events",
            "/api/v1/contracts/KA/terms",
            "/api/v1/session",
        ] {
            let answer = http(
                &base,
                "GET",
                path,
                &[("Authorization", &format!("Bearer {alfa}"))],
                "",
            );
            assert_eq!(answer.status, 401, "{path}: {}", answer.body);
        }
        let amend = http(
            &base,
            "POST",
            "/api/v1/quotes/amend",
            &[
                ("Authorization", &format!("Bearer {alfa}")),
                ("Idempotency-Key", "k"),
            ],
            &json!({"contract": "KA", "effective": day(0), "add": ["SEAT:2"], "apply": true})
                .to_string(),
        );
        assert_eq!(amend.status, 401, "{}", amend.body);

        // Revoked: refused at once.
        let (code, out, err) = run(&["portal", "revoke", &alfa, "--db", &db]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("revoked portal link {alfa_id} (customer c1)")),
            "{out}"
        );
        let page = http(&base, "GET", &format!("/portal/{alfa}/"), &[], "");
        assert_eq!(page.status, 401);
        assert!(!page.body.contains("Alfa"));
        assert_eq!(quote(&base, &alfa, &wanted).status, 401);
        let (code, _, err) = run(&["portal", "revoke", alfa_id, "--db", &db]);
        assert_eq!(code, 1, "a second revoke is an error: {err}");

        // Nothing any of it did changed the book.
        assert_eq!(events(&db), before, "{db}");
    }
}

/// Expired links: refused like forged ones (the expiry moved into the past in the store).
#[test]
fn expired_portal_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    for db in store_urls(dir.path()) {
        imported(&db, &book);
        let token = link(&db, "c1");
        let (child, base) = private_server(&db, &[]);
        let _server = Killed(child);
        assert_eq!(
            http(&base, "GET", &format!("/portal/{token}/"), &[], "").status,
            200
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let store = expansa_store::Store::open(&db, Default::default())
                    .await
                    .unwrap();
                sqlx::query("UPDATE portal_links SET expires_at = '2020-01-01T00:00:00.000000Z'")
                    .execute(store.pool())
                    .await
                    .unwrap();
                store.close().await.unwrap();
            });
        let page = http(&base, "GET", &format!("/portal/{token}/"), &[], "");
        assert_eq!(page.status, 401, "{db}");
        assert!(!page.body.contains("Alfa"));
        assert!(page.body.contains("não é válido"), "{}", page.body);
    }
}

/// The page in headless Chromium on a phone's screen (tests/browser/portal.mjs): the link opens
/// the page; 2 more licences of SEAT and the recommended PAYROLL add-on are priced live, equal
/// to `quote amend`; a quantity below the one held shows the refusal on the page; the
/// amendment's PDF is made, signed (the box required) and applied, with its invoice; an admin
/// sees it in the dashboard's widget of portal amendments.
#[test]
fn portal_page_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    if !aiosmtpd_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    let (secret, secret_file) = provisioning_secret(dir.path());
    for (n, db) in store_urls(dir.path()).into_iter().enumerate() {
        imported(&db, &book);
        let token = link(&db, "c1");
        common::add_user(&db, common::ADMIN.0, "admin", common::ADMIN.1);
        let cli = ka_quote(&db);
        // A mail server and the vendor's provisioning receiver, up from the start.
        let smtp_port = free_port();
        let maildir = dir.path().join(format!("maildir-browser-{n}"));
        let smtpd = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{smtp_port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .spawn()
            .unwrap();
        let _smtpd = Killed(smtpd);
        let (hook, received) = receiver();
        let smtp = format!("smtp://127.0.0.1:{smtp_port}");
        let (child, base) = mailing_server(&db, &smtp, &hook, &secret_file, &[]);
        let _server = Killed(child);
        let shots = screenshots();
        let store = if db.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        };
        run_browser(
            "portal.mjs",
            &[
                base.as_str(),
                &token,
                &cli.to_string(),
                shots.to_str().unwrap(),
                store,
                common::ADMIN.0,
                common::ADMIN.1,
            ],
            &[
                &format!("portal-{store}.png"),
                &format!("portal-signed-{store}.png"),
                &format!("portal-widget-{store}.png"),
            ],
        );
        // What the page's signature sent: both mails with both PDFs, the signed notice.
        let key = format!("Bearer {}", common::api_key(&db, "staff"));
        let listed = http(
            &base,
            "GET",
            "/api/v1/portal/amendments?limit=1",
            &[("Authorization", &key)],
            "",
        )
        .json();
        let signed = listed[0].clone();
        let id = signed["id"].as_str().unwrap().to_string();
        assert_eq!(
            signed["signature"]["email"], "maria@alfa.example",
            "{signed}"
        );
        wait_for(&base, &key, &id, "both mails and the notice sent", |a| {
            a["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["state"] == "sent")
        });
        let hooks = received.lock().unwrap().clone();
        let notice = check_delivered(
            &maildir,
            &hooks,
            &id,
            signed["sha256"].as_str().unwrap(),
            signed["invoice"]["sha256"].as_str().unwrap(),
            secret,
        );
        assert_eq!(notice["amendment"], id.as_str());
        assert_eq!(notice["event"], signed["event"]);
    }
}

/// `GET path` over a new connection: the status and the body's exact bytes (the answers read
/// here have a Content-Length).
fn get_bytes(base: &str, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, answer[split + 4..].to_vec())
}

/// The text of a PDF as pdftotext lays it out; `None` (a skip, a failure under CI) without it.
fn pdf_text(pdf: &[u8]) -> Option<String> {
    if common::missing("pdftotext (Debian's poppler-utils)", which("pdftotext")) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn which(tool: &str) -> bool {
    std::process::Command::new(tool).arg("-v").output().is_ok()
}

/// An amount of `quote amend`'s JSON as the documents print it in pt-BR.
fn brl(amount: &str) -> String {
    let currency = expansa_ledger::Currency::from_code("BRL").unwrap();
    let value: expansa_ledger::Decimal = amount.parse().unwrap();
    expansa_ledger::Locale::PtBr.money(expansa_ledger::Money::from_decimal(value), currency)
}

/// The amendment's PDF, its signature and its application, on both stores: the PDF's text has
/// the vendor, the customer, the lines and totals of `quote amend` to the cent; signing records
/// the signature in the event that applies it, once (a replayed accept applies nothing more);
/// the invoice is numbered without gaps per vendor; `portal verify` recognises both PDFs and
/// refuses a changed one; refusals (another customer's amendment, a wrong hash, no acceptance,
/// a bad e-mail) change nothing; signature attempts are limited per link.
#[test]
fn amendment_pdf_signature_apply_and_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    let vendor = "Expansa Software Ltda.";
    for db in store_urls(dir.path()) {
        imported(&db, &book);
        let alfa = link(&db, "c1");
        let beta = link(&db, "c2");
        let gama = link(&db, "c3");
        let cli = ka_quote(&db);
        let (child, base) = private_server(&db, &["--vendor-name", vendor]);
        let _server = Killed(child);
        let before = events(&db);

        let wanted = json!({"contract": "KA", "items": [
            {"product": "SEAT", "quantity": 7}, {"product": "PAYROLL", "quantity": 1}]});
        let made = http(
            &base,
            "POST",
            &format!("/portal/{alfa}/amendments"),
            &[],
            &wanted.to_string(),
        );
        assert_eq!(made.status, 200, "{}", made.body);
        let made = made.json();
        let id = made["id"].as_str().unwrap().to_string();
        let pdf_path = made["pdf"].as_str().unwrap().to_string();
        let (status, pdf) = get_bytes(&base, &pdf_path);
        assert_eq!(status, 200);
        assert!(pdf.starts_with(b"%PDF-"));
        let sha = expansa_store::sha256_bytes_hex(&pdf);
        assert_eq!(made["sha256"], sha, "the hash of the exact bytes served");
        // Fetched again: the same bytes.
        assert_eq!(get_bytes(&base, &pdf_path).1, pdf);
        // Another customer's link cannot fetch it.
        let (status, theirs) = get_bytes(&base, &pdf_path.replace(&alfa, &beta));
        assert_eq!(status, 404);
        assert!(!String::from_utf8_lossy(&theirs).contains("Alfa"));
        if let Some(text) = pdf_text(&pdf) {
            for shown in [
                vendor,
                "Alfa Contabilidade (c1)",
                "Aditivo de contrato KA",
                &id,
                "Payroll add-on",
            ] {
                assert!(text.contains(shown), "{db}: {shown} not in\n{text}");
            }
            for line in cli["lines"].as_array().unwrap() {
                for field in ["prorated_unit_price", "net_total"] {
                    let amount = brl(line[field].as_str().unwrap());
                    assert!(
                        text.contains(&amount),
                        "{db}: {field} {amount} not in\n{text}"
                    );
                }
            }
            let total = brl(cli["totals"][0]["total"].as_str().unwrap());
            assert!(
                text.contains(&format!("BRL   {total}")) || text.contains(&total),
                "{text}"
            );
            assert_eq!(cli["totals"].as_array().unwrap().len(), 1);
        }
        assert_eq!(events(&db), before, "making the document applies nothing");

        // Refusals: nothing applied.
        let sign_path = format!("/portal/{alfa}/amendments/{id}/sign");
        let signature = |name: &str, email: &str, accept: bool, sha: &str| {
            json!({"name": name, "email": email, "accept": accept, "sha256": sha}).to_string()
        };
        let ua = [("User-Agent", "expansa-test/1.0")];
        for (body, status) in [
            (
                signature("Maria Silva", "maria@alfa.example", true, &"0".repeat(64)),
                409,
            ),
            (
                signature("Maria Silva", "maria@alfa.example", false, &sha),
                400,
            ),
            (signature("Maria Silva", "not an address", true, &sha), 400),
        ] {
            let answer = http(&base, "POST", &sign_path, &ua, &body);
            assert_eq!(answer.status, status, "{body}: {}", answer.body);
        }
        let wrong_link = format!("/portal/{beta}/amendments/{id}/sign");
        let answer = http(
            &base,
            "POST",
            &wrong_link,
            &ua,
            &signature("Bia", "b@beta.example", true, &sha),
        );
        assert_eq!(answer.status, 404, "{}", answer.body);
        assert_eq!(events(&db), before);

        // Signed: applied once, with the signature in the event log.
        let good = signature("Maria Silva", "maria@alfa.example", true, &sha);
        // The 4th and 5th attempts with this link: within the limit (5 a minute).
        let first = http(&base, "POST", &sign_path, &ua, &good);
        assert_eq!(first.status, 200, "{}", first.body);
        let first = first.json();
        assert_eq!(first["replayed"], false);
        assert_eq!(first["invoice"]["number"], 1);
        assert_eq!(first["signed"]["name"], "Maria Silva");
        let event = first["event"].as_i64().unwrap();
        assert_eq!(events(&db), before + 1);
        let again = http(&base, "POST", &sign_path, &ua, &good);
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.json()["event"], event);
        assert_eq!(again.json()["replayed"], true);
        assert_eq!(
            events(&db),
            before + 1,
            "{db}: a replayed accept applies once"
        );
        // Replays are not attempts: past the 5 a minute, still the first outcome, not 429.
        for _ in 0..5 {
            let again = http(&base, "POST", &sign_path, &ua, &good);
            assert_eq!(again.status, 200, "{}", again.body);
            assert_eq!(again.json()["replayed"], true);
        }
        // Documents made per link: 10 a minute (each keeps its PDF), then 429. The limit gives
        // one back every 6 s (GCRA), so a slow machine may make one more per 6 s taken.
        let more = json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 8}]});
        let started = std::time::Instant::now();
        let mut drafts: Vec<u16> = Vec::new();
        while drafts.last() != Some(&429) && drafts.len() < 40 {
            let path = format!("/portal/{alfa}/amendments");
            drafts.push(http(&base, "POST", &path, &[], &more.to_string()).status);
        }
        let made = drafts.len() - 1;
        let back = started.elapsed().as_secs() as usize / 6 + 1;
        assert_eq!(drafts[made], 429, "{db}: {drafts:?}");
        assert!(drafts[..made].iter().all(|&s| s == 200), "{db}: {drafts:?}");
        // One was made above: 9 more, or up to one more per 6 s taken.
        assert!(
            (9..=10 + back).contains(&made),
            "{db}: {made} made in {:?}",
            started.elapsed()
        );
        let (_, log, _) = run(&["events", "--db", &db, "--format", "json"]);
        let log: Value = serde_json::from_str(&log).unwrap();
        let entry = log
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == event)
            .unwrap();
        let reason = entry["reason"].as_str().unwrap();
        for part in [
            "Maria Silva <maria@alfa.example>",
            "from 127.0.0.1",
            "(expansa-test/1.0)",
            &sha,
            &id,
            " signed at 20",
        ] {
            assert!(reason.contains(part), "{db}: {part} not in {reason}");
        }
        assert_eq!(entry["kind"], "amend");
        let (_, shown, _) = run(&[
            "contract",
            "show",
            "--db",
            &db,
            "--contract",
            "KA",
            "--format",
            "json",
        ]);
        let shown: Value = serde_json::from_str(&shown).unwrap();
        let held: Vec<(String, String)> = shown["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["product_id"].as_str().unwrap().to_string(),
                    l["quantity"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert!(held.contains(&("SEAT".into(), "7".into())), "{held:?}");
        assert!(held.contains(&("PAYROLL".into(), "1".into())), "{held:?}");

        // The invoice: numbered 1, billing the prorated total.
        let (status, invoice) = get_bytes(&base, first["invoice"]["pdf"].as_str().unwrap());
        assert_eq!(status, 200);
        assert_eq!(
            expansa_store::sha256_bytes_hex(&invoice),
            first["invoice"]["sha256"]
        );
        if let Some(text) = pdf_text(&invoice) {
            let total = brl(cli["totals"][0]["total"].as_str().unwrap());
            for shown in ["Fatura nº 1", vendor, &id, &total] {
                assert!(text.contains(shown), "{db}: {shown} not in\n{text}");
            }
        }

        // verify: both PDFs are known; a changed byte is not.
        let files = dir.path().join(format!("verify-{}", db.len()));
        std::fs::create_dir_all(&files).unwrap();
        let (a, i, x) = (
            files.join("a.pdf"),
            files.join("i.pdf"),
            files.join("x.pdf"),
        );
        std::fs::write(&a, &pdf).unwrap();
        std::fs::write(&i, &invoice).unwrap();
        let mut changed = pdf.clone();
        let last = changed.len() - 2;
        changed[last] ^= 1;
        std::fs::write(&x, &changed).unwrap();
        let (code, out, err) = run(&["portal", "verify", a.to_str().unwrap(), "--db", &db]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!(
                "signed amendment {id} of contract KA (customer c1)"
            )),
            "{out}"
        );
        assert!(
            out.contains("by Maria Silva <maria@alfa.example> from 127.0.0.1"),
            "{out}"
        );
        assert!(out.contains(&format!("applied by event {event}")), "{out}");
        let (code, out, err) = run(&["portal", "verify", i.to_str().unwrap(), "--db", &db]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("invoice {vendor} no. 1, billing amendment {id}")),
            "{out}"
        );
        let (code, _, err) = run(&["portal", "verify", x.to_str().unwrap(), "--db", &db]);
        assert_eq!(code, 1);
        assert!(
            err.contains("no document the portal kept has this SHA-256"),
            "{err}"
        );

        // Beta's amendment takes the vendor's next number.
        let theirs = json!({"contract": "KB", "items": [{"product": "SEAT", "quantity": 4}]});
        let made = http(
            &base,
            "POST",
            &format!("/portal/{beta}/amendments"),
            &[],
            &theirs.to_string(),
        )
        .json();
        let signed = http(
            &base,
            "POST",
            &format!(
                "/portal/{beta}/amendments/{}/sign",
                made["id"].as_str().unwrap()
            ),
            &ua,
            &signature(
                "Bia Souza",
                "bia@beta.example",
                true,
                made["sha256"].as_str().unwrap(),
            ),
        );
        assert_eq!(signed.status, 200, "{}", signed.body);
        assert_eq!(
            signed.json()["invoice"]["number"],
            2,
            "{db}: gapless per vendor"
        );

        // Staff see it: the amendments with their signature record, event and invoice (an
        // admin's key), never with a portal token; and make a link over the API.
        let key = format!("Bearer {}", common::api_key(&db, "staff"));
        let listed = http(
            &base,
            "GET",
            "/api/v1/portal/amendments?limit=10",
            &[("Authorization", &key)],
            "",
        );
        assert_eq!(listed.status, 200, "{}", listed.body);
        let listed = listed.json();
        let mine = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id.as_str())
            .unwrap();
        assert_eq!(mine["signature"]["email"], "maria@alfa.example");
        assert_eq!(mine["signature"]["client_address"], "127.0.0.1");
        assert_eq!(mine["event"], event);
        assert_eq!(mine["invoice"]["number"], 1);
        assert_eq!(mine["quote"]["totals"], cli["totals"]);
        let refused = http(
            &base,
            "GET",
            "/api/v1/portal/amendments",
            &[("Authorization", &format!("Bearer {alfa}"))],
            "",
        );
        assert_eq!(refused.status, 401);
        let made = http(
            &base,
            "POST",
            "/api/v1/portal/links",
            &[("Authorization", &key)],
            &json!({"customer": "c3", "days": 2}).to_string(),
        );
        assert_eq!(made.status, 201, "{}", made.body);
        let made = made.json();
        assert!(
            made["created_by"].as_str().unwrap().starts_with("staff ("),
            "{made}"
        );
        let page = http(&base, "GET", made["path"].as_str().unwrap(), &[], "");
        assert!(
            page.status == 200 && page.body.contains("Gama SaaS"),
            "{}",
            page.body
        );
        let too_long = http(
            &base,
            "POST",
            "/api/v1/portal/links",
            &[("Authorization", &key)],
            &json!({"customer": "c3", "days": 91}).to_string(),
        );
        assert_eq!(too_long.status, 400);
        let revoked = http(
            &base,
            "DELETE",
            &format!("/api/v1/portal/links/{}", made["id"].as_str().unwrap()),
            &[("Authorization", &key)],
            "",
        );
        assert_eq!(revoked.status, 200, "{}", revoked.body);
        assert_eq!(
            http(&base, "GET", made["path"].as_str().unwrap(), &[], "").status,
            401
        );

        // Signature attempts per link: 5 a minute, then 429.
        let made = http(
            &base,
            "POST",
            &format!("/portal/{gama}/amendments"),
            &[],
            &json!({"contract": "KC", "items": [{"product": "SEAT", "quantity": 3}]}).to_string(),
        )
        .json();
        let path = format!(
            "/portal/{gama}/amendments/{}/sign",
            made["id"].as_str().unwrap()
        );
        let statuses: Vec<u16> = (0..6)
            .map(|_| {
                http(
                    &base,
                    "POST",
                    &path,
                    &ua,
                    &signature("Gil", "g@gama.example", true, &"0".repeat(64)),
                )
                .status
            })
            .collect();
        assert_eq!(statuses, [409, 409, 409, 409, 409, 429], "{db}");
        assert_eq!(events(&db), before + 2);
    }
}

/// A server on `db` that mails through `smtp` (from contratos@, to financeiro@expansa.example
/// too) and notifies provisioning at `hook`, signed with the secret in `secret_file`.
fn mailing_server(
    db: &str,
    smtp: &str,
    hook: &str,
    secret_file: &Path,
    extra: &[&str],
) -> (std::process::Child, String) {
    let mut flags = vec![
        "--smtp",
        smtp,
        "--mail-from",
        "contratos@expansa.example",
        "--finance-email",
        "financeiro@expansa.example",
        "--provisioning-url",
        hook,
        "--provisioning-secret-file",
        secret_file.to_str().unwrap(),
    ];
    flags.extend_from_slice(extra);
    private_server(db, &flags)
}

/// Whether Python's aiosmtpd (the tests' mail server) is there; under CI its absence fails.
fn aiosmtpd_ready() -> bool {
    let present = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    !common::missing("Python's aiosmtpd (pip)", present)
}

/// The provisioning secret of the tests, and its file in `dir`.
fn provisioning_secret(dir: &Path) -> (&'static str, std::path::PathBuf) {
    let secret = "the provisioning secret of the tests";
    let file = dir.join("provisioning.secret");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    (secret, file)
}

/// A free port on loopback (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The requests a receiver got: each one's signature header and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A provisioning receiver on loopback: answers 503 to its first request and 200 after, and
/// keeps each request's signature header and body.
fn receiver() -> (String, Received) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/licences", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signed) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("expansa-signature:") {
                    signed = line.split_once(':').unwrap().1.trim().to_string();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut all = kept.lock().unwrap();
            all.push((signed, String::from_utf8_lossy(&body).into_owned()));
            let status = if all.len() == 1 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

/// The messages of a Maildir as JSON: `[{"to", "subject", "attachments": [{"filename",
/// "sha256"}]}]` (Python's mailbox and email modules).
fn maildir_messages(dir: &Path) -> Value {
    let script = r#"
import email, hashlib, json, mailbox, sys
out = []
for message in mailbox.Maildir(sys.argv[1], factory=None, create=False):
    parsed = email.message_from_bytes(message.as_bytes())
    attachments = [{"filename": p.get_filename(), "sha256": hashlib.sha256(p.get_payload(decode=True)).hexdigest()}
                   for p in parsed.walk() if p.get_filename()]
    out.append({"to": parsed["To"], "subject": str(email.header.make_header(email.header.decode_header(parsed["Subject"]))), "attachments": attachments})
print(json.dumps(sorted(out, key=lambda m: m["to"])))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The HMAC-SHA256 of `message` under `key`, in hex, by Python's own hmac module.
fn python_hmac(key: &str, message: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key,
            message,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Polls the staff listing until `done` holds for amendment `id` (at most 60 s).
fn wait_for(base: &str, key: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..120 {
        let listed = http(
            base,
            "GET",
            "/api/v1/portal/amendments",
            &[("Authorization", key)],
            "",
        )
        .json();
        if let Some(a) = listed
            .as_array()
            .and_then(|l| l.iter().find(|a| a["id"] == id))
        {
            if done(a) {
                return a.clone();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("{what}: not within 60 s");
}

/// A signed amendment's deliveries, on both stores: the mail server is down when it is signed
/// (the amendment stays applied, both mails are pending with their failed attempts logged),
/// then comes up (aiosmtpd on loopback): the signer and finance each get one message with both
/// PDFs (their SHA-256 the store's); the provisioning receiver refuses the first notice (503)
/// and takes the next, whose HMAC-SHA256 signature checks with the shared secret.
#[test]
fn signed_amendment_mails_both_pdfs_and_notifies_provisioning() {
    if !aiosmtpd_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    let (secret, secret_file) = provisioning_secret(dir.path());
    for (n, db) in store_urls(dir.path()).into_iter().enumerate() {
        imported(&db, &book);
        let alfa = link(&db, "c1");
        let smtp_port = free_port();
        let (hook, received) = receiver();
        let smtp = format!("smtp://127.0.0.1:{smtp_port}");
        let (child, base) = mailing_server(
            &db,
            &smtp,
            &hook,
            &secret_file,
            &["--vendor-name", "Expansa Software Ltda."],
        );
        let _server = Killed(child);
        let key = format!("Bearer {}", common::api_key(&db, "staff"));

        let wanted = json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 6}]});
        let made = http(
            &base,
            "POST",
            &format!("/portal/{alfa}/amendments"),
            &[],
            &wanted.to_string(),
        )
        .json();
        let id = made["id"].as_str().unwrap().to_string();
        let body = json!({"name": "Maria Silva", "email": "maria@alfa.example", "accept": true, "sha256": made["sha256"]});
        let signed = http(
            &base,
            "POST",
            &format!("/portal/{alfa}/amendments/{id}/sign"),
            &[],
            &body.to_string(),
        );
        assert_eq!(signed.status, 200, "{}", signed.body);
        let signed = signed.json();

        // The mail server is down: applied all the same, the mails pending, attempts logged.
        let pending = wait_for(&base, &key, &id, "a failed mail attempt", |a| {
            a["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["kind"] == "mail" && d["attempts"].as_i64() >= Some(1))
        });
        let mails: Vec<&Value> = pending["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "mail")
            .collect();
        assert_eq!(mails.len(), 2, "{pending}");
        assert!(mails.iter().all(|d| d["state"] == "pending"), "{pending}");
        assert!(
            mails
                .iter()
                .any(|d| d["last_error"].as_str().is_some_and(|e| !e.is_empty())),
            "{pending}"
        );
        assert_eq!(
            pending["event"], signed["event"],
            "the amendment stays applied"
        );

        // The mail server comes up: both messages arrive, each with both PDFs.
        let maildir = dir.path().join(format!("maildir-{n}"));
        let mut smtpd = std::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{smtp_port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .spawn()
            .unwrap();
        let sent = wait_for(&base, &key, &id, "both mails and the notice sent", |a| {
            a["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["state"] == "sent")
        });
        let _ = smtpd.kill();
        let _ = smtpd.wait();
        let hooks = received.lock().unwrap().clone();
        let notice = check_delivered(
            &maildir,
            &hooks,
            &id,
            made["sha256"].as_str().unwrap(),
            signed["invoice"]["sha256"].as_str().unwrap(),
            secret,
        );
        // The notice: refused once (503, tried again), then taken.
        assert_eq!(hooks.len(), 2, "{hooks:?}");
        let webhook = sent["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "webhook")
            .unwrap();
        assert_eq!(webhook["attempts"], 2, "{webhook}");
        assert_eq!(notice["amendment"], id.as_str());
        assert_eq!(notice["customer_id"], "c1");
        assert_eq!(notice["event"], signed["event"]);
        assert_eq!(notice["lines"][0]["product_id"], "SEAT");
        assert_eq!(notice["lines"][0]["quantity"], "6");
    }
}

/// What a signed amendment `id` sent: both mails (finance and the signer, maria@alfa.example,
/// in `maildir`) with both PDFs attached (`amendment_sha` and `invoice_sha`), and the last
/// provisioning notice of `hooks` (signature header, body) signed with `secret` and timestamped
/// now: the notice, parsed.
fn check_delivered(
    maildir: &Path,
    hooks: &[(String, String)],
    id: &str,
    amendment_sha: &str,
    invoice_sha: &str,
    secret: &str,
) -> Value {
    let messages = maildir_messages(maildir);
    let to: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        ["financeiro@expansa.example", "maria@alfa.example"],
        "{messages}"
    );
    let amendment_pdf = format!("{id}.pdf");
    let invoice_pdf = format!("{id}-invoice.pdf");
    for m in messages.as_array().unwrap() {
        assert!(m["subject"].as_str().unwrap().contains(id), "{m}");
        let attached: Vec<(&str, &str)> = m["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["filename"].as_str().unwrap(),
                    a["sha256"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            attached,
            [
                (amendment_pdf.as_str(), amendment_sha),
                (invoice_pdf.as_str(), invoice_sha)
            ],
            "{m}"
        );
    }
    let (header, notice) = hooks.last().expect("a provisioning notice");
    let (t, v1) = header.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    assert_eq!(
        v1,
        python_hmac(secret, &format!("{t}.{notice}")),
        "the signature checks"
    );
    let age = jiff::Timestamp::now().as_second() - t.parse::<i64>().unwrap();
    assert!((0..120).contains(&age), "timestamped now: {age}");
    serde_json::from_str(notice).unwrap()
}

/// The portal's serve flags are checked before the store is opened or the address bound.
#[test]
fn portal_serve_flags_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("never.db").display());
    let short = dir.path().join("short.secret");
    std::fs::write(&short, "too short\n").unwrap();
    let long_name = "x".repeat(201);
    for (flags, said) in [
        (
            vec![
                "--smtp",
                "smtp://127.0.0.1:25",
                "--finance-email",
                "not an address",
            ],
            "--finance-email \"not an address\": not an e-mail address",
        ),
        (
            vec!["--smtp", "smtp://127.0.0.1:25", "--mail-from", "bad"],
            "--mail-from \"bad\": not an e-mail address",
        ),
        (
            vec!["--smtp", "mail.example.com"],
            "expected smtp://HOST[:PORT]",
        ),
        (
            vec![
                "--provisioning-url",
                "ftp://x",
                "--provisioning-secret-file",
                short.to_str().unwrap(),
            ],
            "an http:// or https:// URL",
        ),
        (
            vec![
                "--provisioning-url",
                "http://127.0.0.1:9/h",
                "--provisioning-secret-file",
                short.to_str().unwrap(),
            ],
            "16 characters or more",
        ),
        (
            vec!["--vendor-name", &long_name],
            "--vendor-name: 1 to 200 characters",
        ),
    ] {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--db", &db];
        args.extend(flags.iter().copied());
        let (code, _, err) = run(&args);
        assert_ne!(code, 0, "{flags:?}");
        assert!(err.contains(said), "{flags:?}: {err}");
    }
    assert!(
        !dir.path().join("never.db").exists(),
        "refused before the store was opened"
    );
}

/// Two amendments of one contract signed at the same moment (and one of them twice): one is
/// applied, the other refused (409, make the document again) — never both on the same priced
/// contract, which billed licences the customer did not get; the twice-sent one answers the same
/// outcome twice. On both stores, several rounds.
#[test]
fn amendments_signed_at_once_apply_only_one() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    for db in store_urls(dir.path()) {
        imported(&db, &book);
        let (child, base) = private_server(&db, &[]);
        let _server = Killed(child);
        let mut seats = 5;
        for round in 0..3 {
            // A fresh link each round: signature attempts are limited per link.
            let token = link(&db, "c1");
            let before = events(&db);
            let prepare = |quantity: i64| {
                let wanted =
                    json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": quantity}]});
                let made = http(
                    &base,
                    "POST",
                    &format!("/portal/{token}/amendments"),
                    &[],
                    &wanted.to_string(),
                );
                assert_eq!(made.status, 200, "{}", made.body);
                let made = made.json();
                let (_, pdf) = get_bytes(&base, made["pdf"].as_str().unwrap());
                (
                    made["id"].as_str().unwrap().to_string(),
                    expansa_store::sha256_bytes_hex(&pdf),
                )
            };
            let a = prepare(seats + 2);
            let b = prepare(seats + 3);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
            let requests = [a.clone(), a.clone(), b.clone()];
            let answers: Vec<(String, u16, Value)> = std::thread::scope(|s| {
                let handles: Vec<_> = requests
                    .iter()
                    .map(|(id, sha)| {
                        let (barrier, base, token) = (barrier.clone(), &base, &token);
                        s.spawn(move || {
                            let body = json!({"name": "Maria Silva", "email": "maria@alfa.example",
                                "accept": true, "sha256": sha})
                            .to_string();
                            barrier.wait();
                            let answer = http(
                                base,
                                "POST",
                                &format!("/portal/{token}/amendments/{id}/sign"),
                                &[],
                                &body,
                            );
                            (id.clone(), answer.status, answer.json())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let applied: Vec<&(String, u16, Value)> =
                answers.iter().filter(|(_, s, _)| *s == 200).collect();
            assert!(!applied.is_empty(), "{db} round {round}: {answers:?}");
            let winner = &applied[0].0;
            for (id, status, body) in &answers {
                if id == winner {
                    assert_eq!(*status, 200, "{db}: the winner's twin: {body}");
                    assert_eq!(body["event"], applied[0].2["event"], "{db}: {answers:?}");
                } else {
                    assert_eq!(*status, 409, "{db}: the other amendment: {body}");
                }
            }
            assert_eq!(events(&db), before + 1, "{db} round {round}: {answers:?}");
            seats += if *winner == a.0 { 2 } else { 3 };
            let (code, out, err) = run(&[
                "contract",
                "show",
                "--db",
                &db,
                "--contract",
                "KA",
                "--at",
                &day(0),
                "--format",
                "json",
            ]);
            assert_eq!(code, 0, "{err}");
            let shown: Value = serde_json::from_str(&out).unwrap();
            let held: i64 = shown["lines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["product_id"] == "SEAT")
                .map(|l| l["quantity"].as_str().unwrap().parse::<i64>().unwrap())
                .sum();
            assert_eq!(held, seats, "{db} round {round}: {answers:?}");
        }
    }
}

/// The invoice is in the language the customer signs in (`?lang=`, as the page sends it), as
/// the amendment's document is (it was always pt-BR).
#[test]
fn the_invoice_is_in_the_signers_language() {
    if !which("pdftotext") && common::missing("pdftotext (poppler-utils)", false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    std::fs::create_dir(&book).unwrap();
    write_book(&book);
    let db = store_urls(dir.path()).remove(0);
    imported(&db, &book);
    let token = link(&db, "c1");
    let (child, base) = private_server(&db, &[]);
    let _server = Killed(child);
    let wanted = json!({"contract": "KA", "items": [{"product": "SEAT", "quantity": 6}]});
    let made = http(
        &base,
        "POST",
        &format!("/portal/{token}/amendments?lang=en"),
        &[],
        &wanted.to_string(),
    )
    .json();
    let id = made["id"].as_str().unwrap();
    let body = json!({"name": "Mary Smith", "email": "mary@alfa.example", "accept": true,
        "sha256": made["sha256"]});
    let signed = http(
        &base,
        "POST",
        &format!("/portal/{token}/amendments/{id}/sign?lang=en"),
        &[],
        &body.to_string(),
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    let (status, pdf) = get_bytes(
        &base,
        &format!("/portal/{token}/amendments/{id}-invoice.pdf"),
    );
    assert_eq!(status, 200);
    let text = pdf_text(&pdf).unwrap();
    assert!(
        text.contains("Invoice no.") && !text.contains("Fatura"),
        "{text}"
    );
}
