//! Books that would knock the reader over or that a database cannot hold, as a careless user
//! or an attacker makes them: values PostgreSQL cannot store are refused by validation (the
//! same on `check` and on `import` into SQLite and PostgreSQL), diagnostics stay short and
//! memory flat however bad the book, and only regular files are read (a named pipe is refused,
//! not waited for).

mod common;

use common::{expansa, store_urls};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes a book into a fresh temporary folder.
fn book(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// What a run of the binary did: exit code, standard error, and its peak memory.
struct Run {
    code: Option<i32>,
    stderr: String,
    /// Peak resident memory, in KiB.
    max_rss_kib: i64,
}

/// Runs `expansa ARGS...`; fails the test when it has not ended after `limit`.
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which also gives its resource usage
fn run(args: &[&std::ffi::OsStr], limit: Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let child = Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args(args)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    loop {
        // Reaped here, with its own resource usage (not that of other tests' children).
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(done >= 0, "wait4: {}", std::io::Error::last_os_error());
        if done == pid {
            break;
        }
        if started.elapsed() > limit {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            panic!("expansa {args:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stderr: String::from_utf8_lossy(&std::fs::read(&err).unwrap()).into_owned(),
        max_rss_kib: usage.ru_maxrss,
    }
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn check(dir: &Path, limit: Duration) -> Run {
    let mut args = os(&["check", "--threads", "2", "--data"]);
    args.push(dir.into());
    run(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        limit,
    )
}

/// The problems a failed run lists, one a line, before its last line.
fn problems(run: &Run) -> Vec<&str> {
    let mut lines: Vec<&str> = run.stderr.lines().collect();
    lines.pop();
    lines
}

const YEAR_ZERO: &str =
    "the year 0000 does not exist (years run from 0001; PostgreSQL cannot store it)";
const NUL: &str =
    "holds a NUL character (U+0000), which no text may hold (PostgreSQL cannot store it)";

/// A book whose values pass every check of the format but that PostgreSQL cannot store: a NUL
/// in a name, the year 0000, an id longer than a database index holds, a key holding the
/// character the store joins keys with.
fn unstorable_book() -> tempfile::TempDir {
    let long_id = "p".repeat(1001);
    book(&[
        (
            "subscriptions.csv",
            b"id,customer_id,product_id,unit_price,start_date\n\
              L1,c1,p1,10,0000-01-01\n\
              L2,c1,p1,10,2024-01-01\n",
        ),
        ("customers.csv", b"id,name\nc1,Pada\0ria\n"),
        (
            "products.csv",
            format!("id,name\np1,Plano\n{long_id},Longo\n").as_bytes(),
        ),
        (
            "contracted_prices.csv",
            b"customer_id,product_id,price\nc\x1f1,p1,9\n",
        ),
        ("fx_rates.csv", b"month,currency,rate\n0000-01,USD,5\n"),
    ])
}

fn unstorable_problems() -> Vec<String> {
    vec![
        format!("subscriptions.csv:2: start_date: 0000-01-01: {YEAR_ZERO}"),
        format!("customers.csv:2: name: Pada\\0ria: {NUL}"),
        format!(
            "products.csv:3: id: {}… (1001 bytes): is 1001 bytes long: an id or other key value \
             has at most 1000 bytes",
            "p".repeat(80)
        ),
        "contracted_prices.csv:2: customer_id: c\\u{1f}1: holds the control character U+001E \
         or U+001F, which no id or other key value may hold (the store joins keys with them)"
            .to_string(),
        format!("fx_rates.csv:2: month: 0000-01: {YEAR_ZERO}"),
    ]
}

#[test]
fn values_a_database_cannot_store_are_refused_by_check() {
    let dir = unstorable_book();
    let run = check(dir.path(), Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(problems(&run), unstorable_problems(), "{}", run.stderr);
}

/// `import` refuses the same values with the same problems on both stores (no database error),
/// and the store is left without a book.
#[test]
fn values_a_database_cannot_store_are_refused_by_import_on_both_stores() {
    let dir = unstorable_book();
    let stores = tempfile::tempdir().unwrap();
    for url in store_urls(stores.path()) {
        let args = [
            "import".into(),
            "--data".into(),
            dir.path().as_os_str().to_owned(),
            "--db".into(),
            url.clone().into(),
        ];
        let import = run(
            &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
            Duration::from_secs(120),
        );
        assert_eq!(import.code, Some(1), "{url}: {}", import.stderr);
        assert!(
            !import.stderr.contains("database"),
            "{url}: {}",
            import.stderr
        );
        assert_eq!(
            problems(&import),
            unstorable_problems(),
            "{url}: {}",
            import.stderr
        );
        let events = expansa().args(["events", "--db", &url]).output().unwrap();
        assert!(events.status.success(), "{url}: {events:?}");
        assert!(
            !String::from_utf8_lossy(&events.stdout).contains("import"),
            "{url}: nothing was recorded: {events:?}"
        );
    }
}

/// A 10 MB value is shown as its first 80 characters and its size.
#[test]
fn a_huge_bad_value_gives_a_short_message() {
    let mut subs = b"id,customer_id,product_id,unit_price,start_date\nL1,c1,p1,".to_vec();
    subs.extend_from_slice(&vec![b'9'; 5 << 20]);
    subs.extend_from_slice(&vec![b'x'; 5 << 20]);
    subs.extend_from_slice(b",2024-01-01\n");
    let dir = book(&[("subscriptions.csv", &subs)]);
    let run = check(dir.path(), Duration::from_secs(60));
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.len() < 400, "{} bytes", run.stderr.len());
    assert_eq!(
        problems(&run),
        [format!(
            "subscriptions.csv:2: unit_price: {}… (10485760 bytes): not a decimal number (like \
             1234.56)",
            "9".repeat(80)
        )]
    );
}

/// 500,000 bad rows: the first 1,000 problems are listed, the rest counted, and the memory
/// taken stays that of reading the book (peak resident memory measured by the kernel).
#[test]
fn half_a_million_bad_rows_list_a_thousand_problems_in_flat_memory() {
    const ROWS: usize = 500_000;
    let mut subs = b"id,customer_id,product_id,unit_price,start_date,notes\n".to_vec();
    for i in 0..ROWS {
        subs.extend_from_slice(
            format!(
                "L{i},c{},p{},x{i},2024-01-01,a note on row {i}\n",
                i % 997,
                i % 7
            )
            .as_bytes(),
        );
    }
    let dir = book(&[("subscriptions.csv", &subs)]);
    let run = check(dir.path(), Duration::from_secs(120));
    assert_eq!(run.code, Some(1));
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1002,
        "{:?}",
        &lines[lines.len().saturating_sub(3)..]
    );
    assert_eq!(
        lines[0],
        "subscriptions.csv:2: unit_price: x0: not a decimal number (like 1234.56)"
    );
    assert_eq!(
        lines[999],
        "subscriptions.csv:1001: unit_price: x999: not a decimal number (like 1234.56)"
    );
    assert_eq!(
        lines[1000],
        "and 499000 more problem(s) (the first 1000 are listed)"
    );
    assert_eq!(
        lines[1001],
        "error: the book has 500000 problem(s); nothing was loaded"
    );
    // The same book with good prices takes about 75 MB; the problems used to take 290 MB more.
    assert!(
        run.max_rss_kib < 128 << 10,
        "peak memory {} MiB",
        run.max_rss_kib >> 10
    );
}

/// A named pipe (or a folder) under a file's name is refused at once, on every command that
/// reads a book, instead of waiting forever for a writer.
#[test]
fn only_regular_files_are_read() {
    let dir = book(&[(
        "subscriptions.csv",
        b"id,customer_id,product_id,unit_price,start_date\nL1,c1,p1,10,2024-01-01\n",
    )]);
    let fifo = dir.path().join("customers.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::create_dir(dir.path().join("products.csv")).unwrap();
    let expected = [
        "customers.csv:0: file: : is not a regular file (a named pipe): only regular files are read",
        "products.csv:0: file: : is not a regular file (a folder): only regular files are read",
    ];
    let checked = check(dir.path(), Duration::from_secs(20));
    assert_eq!(checked.code, Some(1), "{}", checked.stderr);
    assert_eq!(problems(&checked), expected);

    let store = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", store.path().join("s.db").display());
    let args = [
        "import".into(),
        "--data".into(),
        dir.path().as_os_str().to_owned(),
        "--db".into(),
        db.into(),
    ];
    let import = run(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        Duration::from_secs(20),
    );
    assert_eq!(import.code, Some(1), "{}", import.stderr);
    assert_eq!(problems(&import), expected);

    // Even the one file a book must have.
    std::fs::remove_file(dir.path().join("subscriptions.csv")).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("subscriptions.csv"))
        .status()
        .unwrap();
    assert!(made.success());
    let checked = check(dir.path(), Duration::from_secs(20));
    assert_eq!(checked.code, Some(1), "{}", checked.stderr);
    assert!(
        checked.stderr.starts_with(
            "subscriptions.csv:0: file: : is not a regular file (a named pipe): only regular \
             files are read\n"
        ),
        "{}",
        checked.stderr
    );
}
