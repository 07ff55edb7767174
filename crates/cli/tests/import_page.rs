//! The dashboard's Import page in Debian's headless Chromium (playwright-core,
//! tests/browser/import.mjs) against a real `expansa serve` over the demo book: a user's export
//! uploaded with a mapping naming a wrong column is refused with its problem listed; fixed in
//! the page it previews the API's report and first rows; committed, it is one event and the
//! dashboard's figures change. Screenshots are kept in target/screenshots/import-*.png.

mod common;

use common::{add_user, missing, serve, ADMIN};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn import_page_in_headless_chromium() {
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
    add_user(&served.db, ADMIN.0, "admin", ADMIN.1);
    let shots = root().join("target/screenshots");
    let out = Command::new("node")
        .arg(browser_tests.join("import.mjs"))
        .args([&served.base, ADMIN.0, ADMIN.1])
        .arg(&shots)
        .arg(root().join("crates/api/tests/fixtures/imports/mapping"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("import: all checks passed"), "{stdout}");
    for shot in [
        "import-refused.png",
        "import-preview.png",
        "import-committed.png",
        "import-dashboard.png",
    ] {
        let size = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}
