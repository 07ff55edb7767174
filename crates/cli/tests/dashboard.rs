//! The dashboard in Debian's headless Chromium (playwright-core, tests/browser/dashboard.mjs,
//! renewals.mjs and live.mjs) against a real `expansa serve` on loopback, and the API against its OpenAPI document with
//! schemathesis. Screenshots are kept in target/screenshots/. A layout with hostile widget ids
//! is written straight into the store (as an older server, or anyone with the database, could
//! have), past the server's checks, as dashboard `hostile`: the page must still work.

mod common;

use common::{
    add_user, browser_ready, missing, private_server, root, run_browser, screenshots, serve,
    Killed, ADMIN,
};
use std::process::Command;

#[test]
fn dashboard_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    store_hostile_layout(&served.db);
    add_user(&served.db, ADMIN.0, "admin", ADMIN.1);
    let shots = screenshots();
    let args = [
        &served.base,
        ADMIN.0,
        ADMIN.1,
        &served.key,
        shots.to_str().unwrap(),
    ];
    run_browser(
        "dashboard.mjs",
        &args,
        &[
            "dashboard-pt-BR.png",
            "dashboard-trail.png",
            "dashboard-en.png",
            "dashboard-hostile.png",
        ],
    );
}

/// The Renewals widget over the hand-checked book of testdata/renewals
/// (tests/browser/renewals.mjs): the month's renewal rate, its change and trail, the next
/// renewals with their value, and `quote renew --apply` from a row, refused without a login and
/// recorded logged in as an admin.
#[test]
fn renewals_widget_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("testdata/renewals"));
    add_user(&served.db, ADMIN.0, "admin", ADMIN.1);
    let shots = screenshots();
    run_browser(
        "renewals.mjs",
        &[&served.base, ADMIN.0, ADMIN.1, shots.to_str().unwrap()],
        &[
            "renewals-pt-BR.png",
            "renewals-trail.png",
            "renewals-en.png",
        ],
    );
}

/// Live updates (tests/browser/live.mjs): an open dashboard shows a line written by another
/// client (the API key), then a subscription Stripe sends by webhook, within seconds and
/// without a reload; a server started with `--webhook-secret-file`.
#[test]
fn dashboard_follows_writes_live_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    add_user(&served.db, ADMIN.0, "admin", ADMIN.1);
    let secret = "whsec_the_browser_tests_secret";
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("hooks.secrets");
    std::fs::write(&secrets, format!("stripe {secret}\n")).unwrap();
    let (child, base) = private_server(
        &served.db,
        &["--webhook-secret-file", secrets.to_str().unwrap()],
    );
    let _server = Killed(child);
    let shots = screenshots();
    let args = [
        base.as_str(),
        ADMIN.0,
        ADMIN.1,
        &served.key,
        shots.to_str().unwrap(),
        secret,
    ];
    run_browser("live.mjs", &args, &["dashboard-live.png"]);
}

/// Dashboard `hostile`: ids that are members of every JavaScript object, markup, a non-string,
/// odd places, and between them two real widgets that must still render.
fn store_hostile_layout(db: &str) {
    let layout = serde_json::json!({"widgets": [
        {"id": "constructor", "x": 0, "y": 0, "w": 3, "h": 2},
        {"id": "__proto__", "x": 3, "y": 0, "w": 3, "h": 2},
        {"id": "mrr", "x": 0, "y": 2, "w": 3, "h": 2},
        {"id": "toString", "x": 6, "y": 0, "w": 3, "h": 2},
        {"id": "hasOwnProperty"},
        {"id": "\"]<img src=x onerror=alert(1)>", "x": 9, "y": 0, "w": 3, "h": 2},
        {"id": 42, "x": 0, "y": 4},
        null,
        {"id": "cross_sell", "x": "<b>", "y": -1, "w": 1e9, "h": "2"},
    ]});
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = expansa_store::Store::open(db, expansa_import::ImportOptions::default())
            .await
            .unwrap();
        store
            .save_dashboard("hostile", &layout.to_string())
            .await
            .unwrap();
    });
}

#[test]
fn api_conforms_to_its_openapi_document() {
    let present = Command::new("python3")
        .args(["-c", "import schemathesis"])
        .status()
        .is_ok_and(|s| s.success());
    if missing("schemathesis (pip)", present) {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    let out = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/openapi.json", served.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--header",
            &format!("Authorization: Bearer {}", served.key),
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed"), "{stdout}");
}

/// Login, a write refused without its CSRF token, logout and idle expiry in headless Chromium
/// (tests/browser/session.mjs), against a server with private reads and `--session-idle 3`.
#[test]
fn login_csrf_logout_and_expiry_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    let password = "a browser's long password";
    add_user(&served.db, "maria", "admin", password);
    // A second server over the same store: private reads, sessions idle for 3 s at most.
    let (child, base) = private_server(&served.db, &["--session-idle", "3"]);
    let _server = Killed(child);
    run_browser("session.mjs", &[base.as_str(), "maria", password], &[]);
}

/// The users page (tests/browser/admin.mjs): an admin adds a viewer, changes their role,
/// disables them and sets a new password; the viewer logs in, is not shown the page and is
/// refused its endpoints.
#[test]
fn users_page_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    let password = "the admin's long password";
    add_user(&served.db, "maria", "admin", password);
    let (child, base) = private_server(&served.db, &[]);
    let _server = Killed(child);
    run_browser("admin.mjs", &[base.as_str(), "maria", password], &[]);
}
