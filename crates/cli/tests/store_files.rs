//! The store as files and processes see it: the SQLite file alone holds what a command wrote
//! once it exits (its WAL folded in), `backup` makes a file that opens as a store, `export`
//! never mixes two books in one folder, a writer waits for another process's write instead of
//! failing (the API answers 503 with `Retry-After` when the wait is over), and processes
//! racing to create a new store all start.

mod common;

use common::expansa;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demo() -> PathBuf {
    root().join("examples/demo")
}

fn db_url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

fn run(args: &[&str]) -> Output {
    expansa().args(args).output().unwrap()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn import(db: &str, data: &Path) -> Output {
    run(&["import", "--db", db, "--data", data.to_str().unwrap()])
}

/// Every file of a folder, by name.
fn files_of(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned(),
            )
        })
        .collect()
}

/// `expansa export --db DB --out OUT`, which must succeed; the files written.
fn exported(db: &str, out: &Path) -> BTreeMap<String, String> {
    let done = run(&["export", "--db", db, "--out", out.to_str().unwrap()]);
    ok(&done, &format!("export {db}"));
    files_of(out)
}

/// The demo book with one more customer.
fn demo_plus_one(dir: &Path) -> PathBuf {
    let book = dir.join("book");
    std::fs::create_dir_all(&book).unwrap();
    for (name, bytes) in files_of(&demo()) {
        std::fs::write(book.join(name), bytes).unwrap();
    }
    let mut customers = std::fs::OpenOptions::new()
        .append(true)
        .open(book.join("customers.csv"))
        .unwrap();
    customers
        .write_all(b"novo-cliente,Novo Cliente,2024-05-02,mei,BR,indicacao\n")
        .unwrap();
    book
}

/// A copy of only the `.db` file, taken right after `expansa import` (no `-wal`, no `-shm`),
/// is a store holding the whole book: exported, it gives the original's files.
#[test]
fn the_db_file_alone_holds_the_book_after_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("expansa.db");
    ok(&import(&db_url(&db), &demo()), "import");
    let copied = dir.path().join("copy");
    std::fs::create_dir(&copied).unwrap();
    std::fs::copy(&db, copied.join("expansa.db")).unwrap();
    let from_copy = exported(
        &db_url(&copied.join("expansa.db")),
        &dir.path().join("out2"),
    );
    let from_store = exported(&db_url(&db), &dir.path().join("out1"));
    assert!(from_store.contains_key("subscriptions.csv"));
    assert_eq!(from_copy, from_store);
}

/// A command that fails after opening a new store (a bad book) leaves what it wrote (the
/// schema) in the file itself, not in a WAL beside it.
#[test]
fn a_failed_import_leaves_the_schema_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(
        bad.join("subscriptions.csv"),
        "id,customer_id,product_id,unit_price,start_date\nX1,c1,SEAT,abc,2024-01-01\n",
    )
    .unwrap();
    let db = dir.path().join("new.db");
    let out = import(&db_url(&db), &bad);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let bytes = std::fs::read(&db).unwrap();
    let holds = |text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(
        holds("schema_migrations"),
        "the schema is not in {}",
        db.display()
    );
    assert!(
        holds("idempotency"),
        "the schema is not in {}",
        db.display()
    );
}

/// `expansa backup` writes a file that works as `--db sqlite:FILE`, never over an existing
/// file, and for PostgreSQL says to use pg_dump.
#[test]
fn backup_writes_a_store_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("expansa.db"));
    ok(&import(&db, &demo()), "import");
    let copy = dir.path().join("backup.db");
    let done = run(&["backup", "--db", &db, "--out", copy.to_str().unwrap()]);
    ok(&done, "backup");
    assert!(
        String::from_utf8_lossy(&done.stdout).contains("backup.db"),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
    assert_eq!(
        exported(&db_url(&copy), &dir.path().join("from-backup")),
        exported(&db, &dir.path().join("from-store"))
    );
    // Never over an existing file.
    let before = std::fs::read(&copy).unwrap();
    let again = run(&["backup", "--db", &db, "--out", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    // No store there: nothing is made.
    let nowhere = dir.path().join("nothing.db");
    let none = run(&[
        "backup",
        "--db",
        &db_url(&nowhere),
        "--out",
        dir.path().join("b2.db").to_str().unwrap(),
    ]);
    assert_eq!(none.status.code(), Some(1), "{}", stderr(&none));
    assert!(!nowhere.exists() && !dir.path().join("b2.db").exists());
    // PostgreSQL: pg_dump, said before connecting anywhere.
    let pg = run(&[
        "backup",
        "--db",
        "postgres://nobody@127.0.0.1:1/nothing",
        "--out",
        dir.path().join("pg.dump").to_str().unwrap(),
    ]);
    assert_eq!(pg.status.code(), Some(1), "{}", stderr(&pg));
    assert!(stderr(&pg).contains("pg_dump"), "{}", stderr(&pg));
}

/// `export` into a folder that holds files of a book is refused and changes nothing; an empty
/// or new folder, or one with other files only, is fine; `--force` replaces the book there
/// (its interchange files the store has not are removed, other files stay).
#[test]
fn export_refuses_a_folder_holding_a_book() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("expansa.db"));
    ok(&import(&db, &demo()), "import");
    let fresh = exported(&db, &dir.path().join("new/folder"));

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("offers.csv"), "id,line_id\nO9,L9\n").unwrap();
    std::fs::write(other.join("contracts.csv"), "id,customer_id\nK9,c9\n").unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let before = files_of(&other);
    let refused = run(&["export", "--db", &db, "--out", other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(
        said.contains("contracts.csv") && said.contains("offers.csv") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(
        files_of(&other),
        before,
        "a refused export changed the folder"
    );

    let forced = run(&[
        "export",
        "--db",
        &db,
        "--out",
        other.to_str().unwrap(),
        "--force",
    ]);
    ok(&forced, "export --force");
    let mut expected = fresh.clone();
    expected.insert("notes.txt".into(), "mine".into());
    assert!(!fresh.contains_key("contracts.csv"));
    assert_eq!(files_of(&other), expected);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(exported(&db, &empty), fresh);
    let unrelated = dir.path().join("unrelated");
    std::fs::create_dir(&unrelated).unwrap();
    std::fs::write(unrelated.join("README.txt"), "x").unwrap();
    let mut with_readme = fresh.clone();
    with_readme.insert("README.txt".into(), "x".into());
    assert_eq!(exported(&db, &unrelated), with_readme);
}

/// Another process's write transaction on a SQLite store, held from a thread of this test
/// process (its own connection) until `release` is dropped or `hold` ends.
fn hold_write_lock(url: &str, hold: Duration) -> std::thread::JoinHandle<()> {
    let url = url.to_string();
    let (held, taken) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let store = expansa_store::Store::open(&url, Default::default())
                    .await
                    .unwrap();
                let tx = store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
                held.send(()).unwrap();
                tokio::time::sleep(hold).await;
                tx.rollback().await.unwrap();
                store.pool().close().await;
            })
    });
    taken.recv().unwrap();
    holder
}

/// An import started while another process holds the write lock for longer than 5 s waits
/// for it and succeeds; with `--busy-timeout 1` it gives up after about a second, with a clear
/// message, changing nothing.
#[test]
fn an_import_waits_for_the_other_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("expansa.db"));
    ok(&import(&db, &demo()), "import");
    let book = demo_plus_one(dir.path());

    let holder = hold_write_lock(&db, Duration::from_secs(7));
    let started = Instant::now();
    let out = import(&db, &book);
    let waited = started.elapsed();
    holder.join().unwrap();
    ok(&out, "import while another process writes");
    assert!(waited >= Duration::from_secs(6), "did not wait: {waited:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("customers.csv: 1 added"));

    let holder = hold_write_lock(&db, Duration::from_secs(4));
    let started = Instant::now();
    let out = run(&[
        "import",
        "--db",
        &db,
        "--data",
        demo().to_str().unwrap(),
        "--replace",
        "--busy-timeout",
        "1",
    ]);
    let waited = started.elapsed();
    holder.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("busy") && stderr(&out).contains("--busy-timeout"),
        "{}",
        stderr(&out)
    );
    // About the second it was given: no more (closing does not wait again, as nothing was written).
    assert!(waited < Duration::from_millis(1900), "waited {waited:?}");
    let events = run(&["events", "--db", &db, "--format", "json"]);
    ok(&events, "events");
    let events: serde_json::Value = serde_json::from_slice(&events.stdout).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2, "{events}");

    let too_long = run(&["events", "--db", &db, "--busy-timeout", "100000"]);
    assert_eq!(too_long.status.code(), Some(2), "{}", stderr(&too_long));
}

/// A served store, its address and an API key.
struct Served {
    child: std::process::Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &str, extra: &[&str]) -> Served {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--public-reads",
            "--db",
            db,
        ])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = common::server_url(&mut child);
    Served { child, base }
}

/// `POST path` with a JSON body: status, headers (lower-case names) and body.
fn post(
    base: &str,
    path: &str,
    key: &str,
    idempotency: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let bearer = format!("Bearer {key}");
    let answer = common::http(
        base,
        "POST",
        path,
        &[("Authorization", &bearer), ("Idempotency-Key", idempotency)],
        body,
    );
    (answer.status, answer.headers, answer.body)
}

/// A server's write while another process holds a long write transaction waits and succeeds
/// when it ends; once the wait is over (a server with `--busy-timeout 1`), 503 with
/// `Retry-After` and the error code `busy`.
#[test]
fn the_api_waits_for_the_other_writer_then_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_url(&dir.path().join("expansa.db"));
    ok(&import(&db, &demo()), "import");
    let key = common::api_key(&db, "t");
    let patient = serve(&db, &[]);
    let hasty = serve(&db, &["--busy-timeout", "1"]);
    let customer =
        |id: &str| format!(r#"{{"id": "{id}", "name": "Novo", "registered_on": "2024-05-02"}}"#);

    let holder = hold_write_lock(&db, Duration::from_secs(7));
    let started = Instant::now();
    let (status, _, body) = post(
        &patient.base,
        "/api/v1/customers",
        &key,
        "w1",
        &customer("novo-1"),
    );
    let waited = started.elapsed();
    holder.join().unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(waited >= Duration::from_secs(6), "did not wait: {waited:?}");

    let holder = hold_write_lock(&db, Duration::from_secs(4));
    let started = Instant::now();
    let (status, headers, body) = post(
        &hasty.base,
        "/api/v1/customers",
        &key,
        "w2",
        &customer("novo-2"),
    );
    let waited = started.elapsed();
    holder.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(r#""code":"busy""#), "{body}");
    let retry = headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.clone());
    assert!(
        retry
            .as_deref()
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)),
        "Retry-After: {retry:?}"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    // The same request once the other writer is done: written.
    let (status, _, body) = post(
        &hasty.base,
        "/api/v1/customers",
        &key,
        "w2",
        &customer("novo-2"),
    );
    assert_eq!(status, 201, "{body}");
}

/// Processes started at once on a new SQLite file all open it (the schema is made under the
/// write lock, once), round after round: imports (only `import` creates a store; any other
/// command refuses a file that is not there).
#[test]
fn processes_racing_to_create_a_new_store_all_start() {
    let dir = tempfile::tempdir().unwrap();
    let book = root().join("testdata/contracts");
    for round in 0..12 {
        let db = db_url(&dir.path().join(format!("new{round}.db")));
        let children: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
                    .args(["import", "--db", &db, "--data"])
                    .arg(&book)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (k, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}, process {k}: {}",
                stderr(&out)
            );
        }
    }
    // Any other command refuses a store that is not there, and creates nothing.
    let missing = dir.path().join("mistyped.db");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args(["users", "list", "--db", &db_url(&missing)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("no store at {}", missing.display())),
        "{}",
        stderr(&out)
    );
    assert!(!missing.exists());
}
