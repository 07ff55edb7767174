//! Helpers shared by the end-to-end tests of the `expansa` binary.
#![allow(dead_code)] // each test file uses a different subset

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

/// The binary, with the locale variables cleared so tables default to pt-BR.
pub fn expansa() -> Command {
    let mut cmd = Command::cargo_bin("expansa").unwrap();
    cmd.env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG");
    cmd
}

/// `expansa movements --data DATA ARGS... --format json`, which must succeed, parsed.
pub fn movements_json(data: &Path, args: &[&str]) -> Value {
    command_json("movements", data, args)
}

/// `expansa COMMAND --data DATA ARGS... --format json`, which must succeed, parsed.
pub fn command_json(command: &str, data: &Path, args: &[&str]) -> Value {
    let out = expansa()
        .args([command, "--data"])
        .arg(data)
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command} {}: {}",
        data.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `expansa check --data DATA` must fail with exit code 1 and list each of `problems`.
pub fn check_fails_with(data: &Path, problems: &[&str]) {
    let mut assert = expansa()
        .args(["check", "--data"])
        .arg(data)
        .assert()
        .code(1);
    for p in problems {
        assert = assert.stderr(predicate::str::contains(*p));
    }
}

/// Every kind of movement is non-zero in at least one of `months` (a report's "months").
pub fn assert_every_movement_kind(months: &[Value], what: &str) {
    for key in [
        "new",
        "cross_sell",
        "upsell",
        "reactivation",
        "downsell",
        "churn",
    ] {
        assert!(
            months.iter().any(|m| m[key] != "0.00"),
            "{what} shows no {key}"
        );
    }
}

/// The shared folder (spec, generator, peers): `EXPANSA_SHARED`, else `../shared` beside the
/// repository.
pub fn shared() -> std::path::PathBuf {
    std::env::var_os("EXPANSA_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Runs `python3 ARGS...`, which must succeed, and returns its standard output; `needs` names
/// the Python packages the script imports (said when it fails).
pub fn python(args: &[&std::ffi::OsStr], needs: &str) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed (with `pip install {needs}`): {e}"));
    assert!(
        out.status.success(),
        "python3 {args:?} failed (is `pip install {needs}` done?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `expansa serve` on a loopback port over a fresh SQLite store holding `book`, with one API
/// key; the server stops when this is dropped.
pub struct Served {
    child: std::process::Child,
    pub base: String,
    pub key: String,
    /// The store the server serves (another process may write to it directly).
    #[allow(dead_code)] // not every test file that serves reads it
    pub db: String,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new admin API key of the store at `db` (`expansa keys create`'s first line).
pub fn api_key(db: &str, name: &str) -> String {
    let out = expansa()
        .args(["keys", "create", "--name", name, "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

pub fn serve(book: &Path) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("served.db").display());
    let ok = expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(book)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let key = api_key(&db, "tests");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--public-reads",
            "--db",
            &db,
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = server_url(&mut child);
    Served {
        child,
        base,
        key,
        db,
        _dir: dir,
    }
}

/// The `http://host:port` (or `https://`) a starting `expansa serve` (its standard error piped) announces,
/// read from its log; the rest of the log is then drained so the server never blocks on a
/// full pipe. Kills the server and panics, showing what it said, when it ends first.
#[allow(dead_code)] // not every test file that includes this module starts a server
pub fn server_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // The server says what it loaded, then where it serves.
    let mut said = String::new();
    let url = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            panic!("the server ended without an address: {said}");
        }
        if let Some(url) = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        {
            break url.trim_end_matches('/').to_string();
        }
        said += &line;
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    url
}

/// A child process killed (and waited for) when dropped, also when a test fails.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `expansa serve` with private reads over the store `db` on loopback (and `extra` flags): the
/// process and its base URL.
pub fn private_server(db: &str, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args(["serve", "--bind", "127.0.0.1:0", "--db", db])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = server_url(&mut child);
    (child, base)
}

/// Whether a tool the tests need is missing; under CI that is a failure, elsewhere a skip.
pub fn missing(what: &str, present: bool) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have {what} (scripts/test.sh installs it)"
        );
        eprintln!("skipped: {what} is not installed (scripts/test.sh installs it)");
    }
    !present
}

/// Adds a user to the store `db` (`expansa users add --password-stdin`).
#[allow(dead_code)] // not every test file that includes this module adds users
pub fn add_user(db: &str, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut add = std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
        .args(["users", "add", "--db", db, "--name", name, "--role", role])
        .arg("--password-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success());
}

/// The admin the browser tests log in as (added with [`add_user`]), and their password.
#[allow(dead_code)]
pub const ADMIN: (&str, &str) = ("tester", "the browser tests' long password");

/// The repository's root.
pub fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the browser tests keep their screenshots.
pub fn screenshots() -> std::path::PathBuf {
    root().join("target/screenshots")
}

/// Whether headless Chromium and playwright-core are here (else the test is skipped, or fails
/// under CI: see [`missing`]).
pub fn browser_ready() -> bool {
    let ready = root()
        .join("tests/browser/node_modules/playwright-core")
        .is_dir()
        && Path::new("/usr/bin/chromium").exists();
    !missing(
        "node, playwright-core (npm ci in tests/browser) and Debian's chromium",
        ready,
    )
}

/// Runs tests/browser/`script` with `args` and checks that it succeeded, printed
/// "`NAME`: all checks passed" (`NAME` the script's name without `.mjs`) and left each of
/// `shots` in [`screenshots`] as a real image (over 10 kB).
pub fn run_browser<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S], shots: &[&str]) {
    let out = std::process::Command::new("node")
        .arg(root().join("tests/browser").join(script))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = script.trim_end_matches(".mjs");
    assert!(
        stdout.contains(&format!("{name}: all checks passed")),
        "{stdout}"
    );
    for shot in shots {
        let size = std::fs::metadata(screenshots().join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}

/// An HTTP/1.1 answer: status, headers (lower-case names) and body (de-chunked).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value, by its lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a new connection to `base` (`http://host:port` or `host:port`), with a JSON
/// body when `body` is not empty. An error when the server cannot be reached or closes the
/// connection without a whole answer (a killed server).
pub fn try_http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    use std::io::{Error, ErrorKind, Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    let broken = |what: &str| Error::new(ErrorKind::UnexpectedEof, format!("{what}: {text:?}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| broken("no HTTP answer"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut s = body;
        loop {
            let (size, rest) = s.split_once("\r\n").ok_or_else(|| broken("cut chunk"))?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(|_| broken("chunk size"))?;
            if n == 0 {
                break;
            }
            let chunk = rest.get(..n).ok_or_else(|| broken("cut chunk"))?;
            out.push_str(chunk);
            s = rest[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// [`try_http`] to a server that must answer.
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    try_http(base, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
}

/// Store URLs for a test: SQLite (in `dir`), and a new PostgreSQL database when
/// `EXPANSA_TEST_POSTGRES` names a server (CI always does: there its absence is a failure).
pub fn store_urls(dir: &Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite:{}", dir.join("store.db").display())];
    match std::env::var("EXPANSA_TEST_POSTGRES") {
        Ok(admin) => {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("expansa_t_cli_{}_{n}", std::process::id());
            let url = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(expansa_store::create_postgres_database(&admin, &name))
                .unwrap();
            urls.push(url);
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the store tests on PostgreSQL too: set EXPANSA_TEST_POSTGRES"
        ),
    }
    urls
}
