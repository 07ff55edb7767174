//! Three recommenders over holdings: association rules, item-kNN (cosine) and popularity.
//!
//! Each ranks the items a customer does not hold. Ties always fall back to popularity, then
//! to item index, so rankings are deterministic.

use crate::mining::{Mined, Rule};

/// Which recommender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recommender {
    /// The strongest rule whose antecedent the customer holds (popularity where none does).
    Rules,
    /// Sum of cosine similarities to the items held.
    ItemKnn,
    /// Items held by the most customers.
    Popularity,
}

impl Recommender {
    pub const ALL: [Recommender; 3] = [
        Recommender::Rules,
        Recommender::ItemKnn,
        Recommender::Popularity,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Recommender::Rules => "rules",
            Recommender::ItemKnn => "item_knn",
            Recommender::Popularity => "popularity",
        }
    }
}

/// Finds, for an item, the strongest rule a customer's holdings fire.
pub struct RuleIndex<'a> {
    mined: &'a Mined,
    /// Rule positions by consequent, strongest first.
    by_consequent: Vec<Vec<u32>>,
}

impl<'a> RuleIndex<'a> {
    pub fn new(mined: &'a Mined) -> RuleIndex<'a> {
        let mut by_consequent = vec![Vec::new(); mined.item_counts.len()];
        for (k, r) in mined.rules.iter().enumerate() {
            by_consequent[r.consequent as usize].push(k as u32);
        }
        RuleIndex {
            mined,
            by_consequent,
        }
    }

    /// The position in `mined.rules` of the strongest rule with consequent `item` whose
    /// antecedent is all `held`.
    pub fn best(&self, held: &[bool], item: u32) -> Option<usize> {
        self.by_consequent[item as usize]
            .iter()
            .map(|&k| k as usize)
            .find(|&k| {
                self.mined.rules[k]
                    .antecedent
                    .iter()
                    .all(|&a| held[a as usize])
            })
    }

    /// How many transactions hold `item`.
    pub fn item_count(&self, item: u32) -> u64 {
        self.mined.item_counts[item as usize]
    }

    pub fn rule(&self, k: usize) -> &Rule {
        &self.mined.rules[k]
    }
}

/// Item-to-item cosine similarity from co-ownership.
pub struct ItemKnn {
    /// For each item, the items it shares a basket with and the similarity.
    neighbours: Vec<Vec<(u32, f64)>>,
}

impl ItemKnn {
    /// Similarities from `baskets` (sorted item lists).
    pub fn new(baskets: &[Vec<u32>], items: usize) -> ItemKnn {
        let mut counts = vec![0u64; items];
        let mut co: hashbrown::HashMap<(u32, u32), u64> = hashbrown::HashMap::new();
        for b in baskets {
            for (x, &i) in b.iter().enumerate() {
                counts[i as usize] += 1;
                for &j in &b[x + 1..] {
                    *co.entry((i, j)).or_default() += 1;
                }
            }
        }
        let mut neighbours = vec![Vec::new(); items];
        let mut pairs: Vec<_> = co.into_iter().collect();
        pairs.sort_unstable();
        for ((i, j), n) in pairs {
            // Ranking scores only: never a reported amount.
            let sim = n as f64 / ((counts[i as usize] * counts[j as usize]) as f64).sqrt();
            neighbours[i as usize].push((j, sim));
            neighbours[j as usize].push((i, sim));
        }
        ItemKnn { neighbours }
    }
}

/// Ranks what a customer could add, for any of the three recommenders.
pub struct Ranker<'a> {
    pub item_counts: &'a [u64],
    pub rules: &'a RuleIndex<'a>,
    pub knn: Option<&'a ItemKnn>,
}

impl Ranker<'_> {
    /// The top `k` items not in `basket` (sorted), best first; `candidate` limits the items
    /// considered.
    pub fn top(
        &self,
        recommender: Recommender,
        basket: &[u32],
        k: usize,
        candidate: impl Fn(u32) -> bool,
    ) -> Vec<u32> {
        let items = self.item_counts.len();
        let mut held = vec![false; items];
        for &i in basket {
            held[i as usize] = true;
        }
        let popularity = |i: u32| std::cmp::Reverse(self.item_counts[i as usize]);
        let mut pool: Vec<u32> = (0..items as u32)
            .filter(|&i| !held[i as usize] && candidate(i))
            .collect();
        match recommender {
            Recommender::Popularity => pool.sort_by_key(|&i| (popularity(i), i)),
            Recommender::Rules => pool.sort_by_key(|&i| {
                let rule = self.rules.best(&held, i).unwrap_or(usize::MAX);
                (rule, popularity(i), i)
            }),
            Recommender::ItemKnn => {
                let mut score = vec![0f64; items];
                if let Some(knn) = self.knn {
                    for &h in basket {
                        for &(j, s) in &knn.neighbours[h as usize] {
                            score[j as usize] += s;
                        }
                    }
                }
                pool.sort_by(|&a, &b| {
                    score[b as usize]
                        .total_cmp(&score[a as usize])
                        .then_with(|| popularity(a).cmp(&popularity(b)))
                        .then_with(|| a.cmp(&b))
                })
            }
        }
        pool.truncate(k);
        pool
    }
}
