//! Times association mining alone, for `bench/rules.py`: reads transactions (one per line,
//! items separated by tabs), mines them `RUNS` times and prints the median milliseconds of
//! mining + rendering the rules as CSV in memory, and the number of rules.
//!
//! usage: mine_baskets FILE MIN_SUPPORT MIN_CONFIDENCE MAX_LEN RUNS

use expansa_ledger::Format;
use expansa_opportunities::{mine, render_rules, MiningOptions};
use std::collections::HashMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, support, confidence, max_len, runs] = &args[..] else {
        eprintln!("usage: mine_baskets FILE MIN_SUPPORT MIN_CONFIDENCE MAX_LEN RUNS");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(file).expect("a readable file");
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    let baskets: Vec<Vec<u32>> = text
        .lines()
        .map(|line| {
            line.split('\t')
                .filter(|s| !s.is_empty())
                .map(|item| {
                    *ids.entry(item).or_insert_with(|| {
                        names.push(item.to_string());
                        names.len() as u32 - 1
                    })
                })
                .collect()
        })
        .collect();
    let options = MiningOptions {
        min_support: support.parse().expect("a support"),
        min_confidence: confidence.parse().expect("a confidence"),
        max_len: max_len.parse().expect("a length"),
        ..MiningOptions::default()
    };
    let mut times = Vec::new();
    let mut rules = 0;
    for _ in 0..runs.parse::<usize>().expect("a count") {
        let t = Instant::now();
        let mined = mine(&baskets, names.len(), &options).expect("within the itemset limit");
        let csv = render_rules(&mined, &names, false, Format::Csv);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        rules = csv.lines().count() - 1;
    }
    times.sort_by(f64::total_cmp);
    println!("{:.3} {rules}", times[times.len() / 2]);
}
