//! The dashboard in Debian's headless Chromium (playwright-core, tests/browser/dashboard.mjs)
//! against a real `expansa serve` on loopback, and the API against its OpenAPI document with
//! schemathesis. Screenshots are kept in target/screenshots/.

mod common;

use common::{missing, serve};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn dashboard_in_headless_chromium() {
    let browser_tests = root().join("tests/browser");
    let ready = browser_tests.join("node_modules/playwright-core").is_dir()
        && Path::new("/usr/bin/chromium").exists();
    if missing(
        "node, playwright-core (npm ci in tests/browser) and Debian's chromium",
        ready,
    ) {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    let shots = root().join("target/screenshots");
    let out = Command::new("node")
        .arg(browser_tests.join("dashboard.mjs"))
        .args([&served.base, &served.key])
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dashboard: all checks passed"), "{stdout}");
    for shot in [
        "dashboard-pt-BR.png",
        "dashboard-trail.png",
        "dashboard-en.png",
    ] {
        let size = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
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
