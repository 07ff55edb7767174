//! The management report: its content, that it is self-contained, and that a real browser
//! (Debian's headless Chromium) renders it. The screenshot is kept in target/screenshots/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    let found = std::env::var_os("EXPANSA_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|p| p.exists());
    found.expect("the report test needs Debian's chromium (apt-get install chromium); scripts/test.sh installs it")
}

/// Runs headless Chromium on `page` with `args` (flags that keep it off the network).
fn headless(page: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

#[test]
fn report_is_complete_self_contained_and_renders_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out_dir = root.join("target/screenshots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("report-2024-06.html");
    common::expansa()
        .args(["report", "--data"])
        .arg(root.join("examples/demo"))
        .args(["--month", "2024-06", "--locale", "pt-BR", "--out"])
        .arg(&page)
        .assert()
        .success();
    let html = std::fs::read_to_string(&page).unwrap();
    for expected in [
        "<html lang=\"pt-BR\">",
        "Relatório de receita recorrente · 2024-06",
        "Mês anterior (2024-05)",
        "Um ano antes (2023-06)",
        "R$ 31.880,90", // MRR at the end of June 2024
        "Movimentos de MRR",
        "<svg",
        "Coortes",
        "Maiores cross-sells",
        "Clínica Vida Plena", // the month's cross-sell (BPO financeiro, R$ 650,00)
        "R$ 650,00",
        "Norte Consultoria", // the month's downsell (coworking dropped)
        "-R$ 1.770,00",
        "Nenhum no mês.", // no churn in June 2024
    ] {
        assert!(html.contains(expected), "the report lacks {expected:?}");
    }
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the report is not self-contained: {external}"
        );
    }

    let profile = out_dir.join("chromium-profile");
    let dom = headless(&page, &profile, &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Maiores downsells") && dom.contains("<table class=\"heat\">"),
        "{dom}"
    );

    let shot = out_dir.join("report-2024-06.png");
    let _ = std::fs::remove_file(&shot);
    let run = headless(
        &page,
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[16..24], &[0, 0, 5, 0, 0, 0, 10, 40]); // 1280 x 2600
    assert!(
        png.len() > 100_000,
        "a rendered page, not a blank one ({} bytes)",
        png.len()
    );
}
