//! `expansa users` and `keys create --role`: a password from standard input only (never a flag,
//! never printed), its minimum length, roles, disabling; and `serve` refusing to expose a store
//! (public reads off loopback, a non-loopback address without TLS, unreadable TLS files); and
//! `expansa audit` listing the reads a server logged.

mod common;

use common::{expansa, serve};
use std::io::Write;
use std::process::{Output, Stdio};

fn process() -> std::process::Command {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("expansa"))
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = process()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A new SQLite store holding a small book (only `import` creates a store).
fn new_store(path: &std::path::Path) -> String {
    let db = format!("sqlite:{}", path.display());
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts");
    let out = expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(book)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    db
}

#[test]
fn users_are_added_listed_changed_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_store(&dir.path().join("users.db"));
    let password = "a long enough secret";
    let add = |name: &str, role: &str, input: &str| {
        with_stdin(
            &[
                "users",
                "add",
                "--db",
                &db,
                "--name",
                name,
                "--role",
                role,
                "--password-stdin",
            ],
            input,
        )
    };
    let out = add("maria", "admin", &format!("{password}\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(password));
    // Only spaces: refused.
    let out = add("pedro", "viewer", &format!("{}\n", " ".repeat(14)));
    assert!(!out.status.success());
    assert!(text(&out).contains("only spaces"), "{}", text(&out));
    // Too short: refused, naming the minimum, not the password.
    let out = add("joao", "viewer", "short\n");
    assert!(!out.status.success());
    assert!(text(&out).contains("at least 12"), "{}", text(&out));
    assert!(!text(&out).contains("short\n"), "{}", text(&out));
    // No terminal and no --password-stdin: refused, nothing added.
    let out = process()
        .args([
            "users", "add", "--db", &db, "--name", "ana", "--role", "analyst",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("--password-stdin"), "{}", text(&out));
    // A bad role or name is a usage error.
    let out = add("joao", "owner", "x\n");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = add("jo ao", "viewer", &format!("{password}\n"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = add("joao", "viewer", &format!("{password}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--db", &db]);
        expansa().args(all).output().unwrap()
    };
    let out = run(&["users", "set-role", "--name", "joao", "--role", "analyst"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["users", "disable", "--name", "joao"]);
    assert!(out.status.success(), "{}", text(&out));
    let list = text(&run(&["users", "list"]));
    let joao = list.lines().find(|l| l.contains("joao")).unwrap();
    assert!(
        joao.contains("analyst") && joao.matches('Z').count() == 2,
        "{list}"
    );
    assert!(!list.contains("argon2"), "{list}");
    let out = with_stdin(
        &[
            "users",
            "reset-password",
            "--db",
            &db,
            "--name",
            "joao",
            "--password-stdin",
        ],
        "another long secret\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["users", "disable", "--name", "nobody"]);
    assert!(!out.status.success());
    // Keys get a role (admin by default).
    let out = run(&["keys", "create", "--name", "bi", "--role", "viewer"]);
    assert!(out.status.success(), "{}", text(&out));
    let keys = text(&run(&["keys", "list"]));
    assert!(
        keys.lines()
            .any(|l| l.contains("bi") && l.contains("viewer")),
        "{keys}"
    );
}

#[test]
fn serve_refuses_to_expose_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_store(&dir.path().join("serve.db"));
    let secrets = dir.path().join("hooks.secrets");
    std::fs::write(
        &secrets,
        "stripe whsec_fine_secret_0123456\npaypal not_a_kind_secret_987\n",
    )
    .unwrap();
    let secrets = secrets.to_str().unwrap();
    for (args, said) in [
        (vec!["--webhook-tolerance", "0"], "--webhook-tolerance"),
        (vec!["--webhook-tolerance", "3601"], "--webhook-tolerance"),
        (
            vec!["--webhook-secret-file", "/nonexistent/hooks"],
            "--webhook-secret-file /nonexistent/hooks",
        ),
        (
            vec!["--webhook-secret-file", secrets],
            "line 2: expected `stripe SECRET` or `generic SECRET`",
        ),
        (vec!["--bind", "0.0.0.0:0"], "--behind-proxy"),
        (
            vec!["--bind", "0.0.0.0:0", "--public-reads", "--behind-proxy"],
            "--public-reads",
        ),
        (
            vec![
                "--bind",
                "0.0.0.0:0",
                "--tls-cert",
                "/nonexistent/server.crt",
                "--tls-key",
                "/nonexistent/server.key",
            ],
            "--tls-cert /nonexistent/server.crt: cannot read it",
        ),
        (vec!["--tls-cert", "/nonexistent/server.crt"], "--tls-key"),
        (
            vec!["--session-idle", "100", "--session-max", "10"],
            "--session-idle 100 is longer than --session-max 10",
        ),
    ] {
        let out = expansa()
            .args(["serve", "--db", &db])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(said), "{args:?}: {}", text(&out));
        assert!(
            !text(&out).contains("secret_"),
            "a secret was printed: {}",
            text(&out)
        );
    }
}

#[test]
fn audit_lists_the_reads_a_server_logged() {
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let served = serve(&book);
    let bearer = format!("Bearer {}", served.key);
    let answer = common::http(
        &served.base,
        "GET",
        "/api/v1/customers?limit=1",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let audit = |args: &[&str]| {
        expansa()
            .args(["audit", "--db", &served.db])
            .args(args)
            .output()
            .unwrap()
    };
    // The server logs the read beside its answer: wait for it.
    let mut listed = serde_json::Value::Null;
    for _ in 0..100 {
        let out = audit(&["--key", "tests", "--format", "json"]);
        assert!(out.status.success(), "{}", text(&out));
        listed = serde_json::from_slice(&out.stdout).unwrap();
        if listed.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(listed[0]["path"], "/api/v1/customers?limit=1", "{listed}");
    assert_eq!(listed[0]["method"], "GET");
    assert_eq!(listed[0]["status"], 200);
    assert!(listed[0]["actor"].as_str().unwrap().starts_with("tests ("));
    let out = audit(&["--since", "2000-01-01", "--limit", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().unwrap().contains("actor"), "{table}");
    assert!(table.contains("/api/v1/customers?limit=1"), "{table}");
    let out = audit(&["--format", "csv", "--user", "nobody"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "id,at,actor,method,path,status\n"
    );
    for (args, said) in [
        (vec!["--limit", "10001"], "from 1 to 10000"),
        (vec!["--limit", "0"], "from 1 to 10000"),
        (vec!["--since", "last week"], "RFC 3339"),
        (vec!["--user", "no body"], "--user"),
        (vec!["--as-of", "2024-01-01"], "--as-of"),
    ] {
        let out = audit(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(said), "{args:?}: {}", text(&out));
    }
}
