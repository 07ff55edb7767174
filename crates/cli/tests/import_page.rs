//! The dashboard's Import page in Debian's headless Chromium (playwright-core,
//! tests/browser/import.mjs) against a real `expansa serve` over the demo book: a user's export
//! uploaded with a mapping naming a wrong column is refused with its problem listed; fixed in
//! the page it previews the API's report and first rows; committed, it is one event and the
//! dashboard's figures change. Screenshots are kept in target/screenshots/import-*.png.

mod common;

use common::{add_user, browser_ready, root, run_browser, screenshots, serve, ADMIN};

#[test]
fn import_page_in_headless_chromium() {
    if !browser_ready() {
        return;
    }
    let served = serve(&root().join("examples/demo"));
    add_user(&served.db, ADMIN.0, "admin", ADMIN.1);
    let shots = screenshots();
    let mapping = root().join("crates/api/tests/fixtures/imports/mapping");
    run_browser(
        "import.mjs",
        &[
            served.base.as_str(),
            ADMIN.0,
            ADMIN.1,
            shots.to_str().unwrap(),
            mapping.to_str().unwrap(),
        ],
        &[
            "import-refused.png",
            "import-preview.png",
            "import-committed.png",
            "import-dashboard.png",
        ],
    );
}
