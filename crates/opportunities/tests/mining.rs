//! Property tests of association mining: counts equal a brute-force count over every subset,
//! rules are exactly those meeting the thresholds, and nothing depends on basket order or the
//! order of items inside a basket.

use expansa_ledger::Decimal;
use expansa_opportunities::{mine, MinSupport, MiningOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn baskets() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(0u32..7, 0..6), 1..40)
}

/// Every non-empty itemset of up to `max_len` items held by at least `min` baskets.
fn brute_force(baskets: &[Vec<u32>], max_len: usize, min: u64) -> BTreeMap<Vec<u32>, u64> {
    let mut counts = BTreeMap::new();
    for mask in 1u32..(1 << 7) {
        let items: Vec<u32> = (0..7).filter(|i| mask & (1 << i) != 0).collect();
        if items.len() > max_len {
            continue;
        }
        let n = baskets
            .iter()
            .filter(|b| items.iter().all(|i| b.contains(i)))
            .count() as u64;
        if n >= min {
            counts.insert(items, n);
        }
    }
    counts
}

proptest! {
    #[test]
    fn itemsets_and_rules_match_brute_force(
        baskets in baskets(),
        min in 1u64..5,
        confidence_pct in 0i64..=100,
        max_len in 1usize..4,
    ) {
        let options = MiningOptions {
            min_support: MinSupport::Count(min),
            min_confidence: Decimal::new(confidence_pct, 2),
            max_len,
            max_itemsets: 1_000_000,
        };
        let mined = mine(&baskets, 7, &options).unwrap();
        let expected = brute_force(&baskets, max_len, min);
        let got: BTreeMap<Vec<u32>, u64> =
            mined.itemsets.iter().map(|s| (s.items.to_vec(), s.count)).collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(got.len(), mined.itemsets.len());
        let mut rules = 0;
        for (items, &count) in expected.iter().filter(|(i, _)| i.len() >= 2) {
            for (k, &consequent) in items.iter().enumerate() {
                let mut antecedent = items.clone();
                antecedent.remove(k);
                let a = expected[&antecedent];
                // Exact: count / a >= confidence_pct / 100.
                if count * 100 >= confidence_pct as u64 * a {
                    rules += 1;
                    prop_assert!(mined.rules.iter().any(|r| r.antecedent.to_vec() == antecedent
                        && r.consequent == consequent && r.count == count && r.antecedent_count == a));
                }
            }
        }
        prop_assert_eq!(rules, mined.rules.len());
        for w in mined.rules.windows(2) {
            prop_assert!(w[0].strength_cmp(&w[1]).is_le());
        }
    }

    #[test]
    fn order_of_baskets_and_items_does_not_matter(baskets in baskets(), seed in any::<u64>()) {
        let options = MiningOptions {
            min_support: MinSupport::Count(2),
            min_confidence: Decimal::new(2, 1),
            ..MiningOptions::default()
        };
        let a = mine(&baskets, 7, &options).unwrap();
        let mut shuffled = baskets.clone();
        let mut s = seed | 1;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        for i in (1..shuffled.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        for b in &mut shuffled {
            b.reverse();
        }
        let b = mine(&shuffled, 7, &options).unwrap();
        prop_assert_eq!(a.itemsets, b.itemsets);
        prop_assert_eq!(a.rules, b.rules);
    }
}
