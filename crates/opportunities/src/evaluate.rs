//! Offline evaluation: hide what customers added after a cutoff, recommend from what they held
//! at the cutoff, and score the rules recommender, item-kNN and popularity on what they did add.

use crate::holdings::{Holdings, Level};
use crate::mining::{mine, MiningOptions, TooManyItemsets};
use crate::recommend::{ItemKnn, Ranker, Recommender, RuleIndex};
use expansa_ledger::{Book, Date, Decimal, LineIdx, Money, ProductIdx};
use expansa_movements::{ByCustomer, Selection};
use rayon::prelude::*;

/// What to evaluate.
#[derive(Clone, Copy, Debug)]
pub struct EvaluateOptions {
    pub cutoff: Date,
    /// Last day of the hidden period (default: the latest line start of the book).
    pub until: Option<Date>,
    pub k: usize,
    pub mining: MiningOptions,
}

/// The four ranking measures; each a mean over the customers evaluated (exact quotients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measures {
    /// Share of customers with at least one added product in the top k.
    pub hit_rate: Decimal,
    /// Hits / k.
    pub precision: Decimal,
    /// Mean average precision at k.
    pub map: Decimal,
    /// Mean reciprocal rank of the first hit in the top k (0 when none).
    pub mrr: Decimal,
}

/// How one recommender did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    pub recommender: Recommender,
    pub at_k: Measures,
    /// The MRR of the added products it recommended.
    pub captured_mrr: Money,
    /// Each measure over popularity's (`None` where popularity's is zero).
    pub lift_over_popularity: [Option<Decimal>; 4],
}

/// The evaluation.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub cutoff: Date,
    pub until: Date,
    pub k: usize,
    /// Customers holding something at the cutoff.
    pub holders: u64,
    /// Of those, the customers who added a product after it (the ones scored).
    pub customers: u64,
    /// (customer, product) pairs added.
    pub added: u64,
    /// MRR of everything added (the first line of each pair).
    pub added_mrr: Money,
    pub scores: Vec<Score>,
    /// Plain statements on the result (where popularity wins, say so).
    pub notes: Vec<String>,
}

/// One customer's result under one recommender: (hit?, hits, average precision, reciprocal
/// rank, captured MRR).
type CustomerScore = (bool, u64, Decimal, Decimal, Money);

/// Per customer: the products added after the cutoff and the MRR each first brought.
fn added_after(
    book: &Book,
    holdings: &Holdings,
    by_customer: &ByCustomer,
    cutoff: Date,
    until: Date,
) -> Vec<Vec<(ProductIdx, Money)>> {
    holdings
        .customers
        .par_iter()
        .zip(&holdings.baskets)
        .map(|(&c, basket)| {
            let mut firsts: Vec<(ProductIdx, Date, LineIdx)> = by_customer
                .lines(c as usize)
                .iter()
                .map(|&l| (l, &book.lines.items[l as usize]))
                .filter(|(_, line)| line.start > cutoff && line.start <= until)
                .filter(|(_, line)| basket.binary_search(&line.product).is_err())
                .map(|(l, line)| (line.product, line.start, l))
                .collect();
            firsts.sort_unstable_by_key(|&(p, start, l)| {
                (p, start, book.lines.ids.get(l).to_string())
            });
            firsts.dedup_by_key(|f| f.0);
            firsts
                .into_iter()
                .map(|(p, _, l)| (p, book.lines.items[l as usize].mrr()))
                .collect()
        })
        .collect()
}

/// Hides what was added after `options.cutoff` and scores the three recommenders on it.
pub fn evaluate(book: &Book, options: &EvaluateOptions) -> Result<Evaluation, TooManyItemsets> {
    let cutoff = options.cutoff;
    // By default up to the latest line start, never before the cutoff (a cutoff after every
    // start leaves an empty window, not one that runs backwards).
    let until = options
        .until
        .or_else(|| book.lines.items.iter().map(|l| l.start).max())
        .map_or(cutoff, |u| u.max(cutoff));
    let holdings = Holdings::on(book, cutoff, Level::Product);
    let by_customer = ByCustomer::new(book, &Selection::all());
    let truth = added_after(book, &holdings, &by_customer, cutoff, until);
    let items = holdings.names.len();
    let mined = mine(&holdings.baskets, items, &options.mining)?;
    let index = RuleIndex::new(&mined);
    let knn = ItemKnn::new(&holdings.baskets, items);
    let ranker = Ranker {
        item_counts: &mined.item_counts,
        rules: &index,
        knn: Some(&knn),
    };
    let k = options.k.max(1);
    let scored: Vec<usize> = (0..holdings.len())
        .filter(|&h| !truth[h].is_empty())
        .collect();
    let per_customer: Vec<[CustomerScore; 3]> = scored
        .par_iter()
        .map(|&h| {
            let added = &truth[h];
            Recommender::ALL.map(|r| {
                let top = ranker.top(r, &holdings.baskets[h], k, |_| true);
                let (mut hits, mut ap, mut rr, mut captured) =
                    (0u64, Decimal::ZERO, Decimal::ZERO, Money::ZERO);
                for (rank, p) in top.iter().enumerate() {
                    if let Some(&(_, mrr)) = added.iter().find(|(q, _)| q == p) {
                        hits += 1;
                        ap += Decimal::from(hits) / Decimal::from(rank as u64 + 1);
                        if hits == 1 {
                            rr = Decimal::ONE / Decimal::from(rank as u64 + 1);
                        }
                        captured += mrr;
                    }
                }
                let ap = ap / Decimal::from(added.len().min(k) as u64);
                (hits > 0, hits, ap, rr, captured)
            })
        })
        .collect();
    let n = Decimal::from(scored.len().max(1) as u64);
    let mut scores: Vec<Score> = Recommender::ALL
        .iter()
        .enumerate()
        .map(|(i, &recommender)| {
            let (mut hit, mut hits, mut ap, mut rr, mut captured) =
                (0u64, 0u64, Decimal::ZERO, Decimal::ZERO, Money::ZERO);
            for c in &per_customer {
                let (h, n_hits, a, r, m) = c[i];
                hit += u64::from(h);
                hits += n_hits;
                ap += a;
                rr += r;
                captured += m;
            }
            Score {
                recommender,
                at_k: Measures {
                    hit_rate: Decimal::from(hit) / n,
                    precision: Decimal::from(hits) / (n * Decimal::from(k as u64)),
                    map: ap / n,
                    mrr: rr / n,
                },
                captured_mrr: captured,
                lift_over_popularity: [None; 4],
            }
        })
        .collect();
    let popularity = scores[2].at_k;
    let as_array = |m: &Measures| [m.hit_rate, m.precision, m.map, m.mrr];
    for s in &mut scores {
        let mine = as_array(&s.at_k);
        let base = as_array(&popularity);
        s.lift_over_popularity =
            std::array::from_fn(|i| (!base[i].is_zero()).then(|| mine[i] / base[i]));
    }
    let notes = verdict(&scores, k, items, scored.len());
    Ok(Evaluation {
        cutoff,
        until,
        k,
        holders: holdings.len() as u64,
        customers: scored.len() as u64,
        added: truth.iter().map(|t| t.len() as u64).sum(),
        added_mrr: truth.iter().flatten().map(|&(_, m)| m).sum(),
        scores,
        notes,
    })
}

/// Names of the measures, in [`Measures`] order.
pub const MEASURES: [&str; 4] = ["hit_rate", "precision", "map", "mrr"];

fn verdict(scores: &[Score], k: usize, items: usize, customers: usize) -> Vec<String> {
    if customers == 0 {
        return vec!["no customer added a product after the cutoff: nothing to score".into()];
    }
    let mut notes = Vec::new();
    let measures = |s: &Score| [s.at_k.hit_rate, s.at_k.precision, s.at_k.map, s.at_k.mrr];
    let popularity = measures(&scores[2]);
    for s in &scores[..2] {
        let lost: Vec<&str> = measures(s)
            .iter()
            .zip(popularity)
            .zip(MEASURES)
            .filter(|((m, p), _)| **m <= *p)
            .map(|(_, name)| name)
            .collect();
        if !lost.is_empty() {
            notes.push(format!(
                "popularity matches or beats {} on {}@{k} ({} products in the catalogue: on a small catalogue the most popular products are hard to beat)",
                s.recommender.key(),
                lost.join(", "),
                items
            ));
        }
    }
    if customers < 30 {
        notes.push(format!(
            "only {customers} customers added a product after the cutoff: differences this small are noise"
        ));
    }
    notes
}
