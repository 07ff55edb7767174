//! Frequent itemsets and single-consequent association rules, with exact integer counts.
//!
//! Eclat over vertical bitsets of the distinct baskets (identical baskets are counted once,
//! with their multiplicity as a weight). Thresholds are compared on integer counts, so a rule
//! whose confidence equals `--min-confidence` exactly is kept.

use expansa_ledger::Decimal;
use hashbrown::HashMap;
use rayon::prelude::*;
use rust_decimal::prelude::FromPrimitive;
use std::cmp::Ordering;

/// The minimum support of an itemset: a fraction of the transactions or a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinSupport {
    /// A fraction in (0, 1]; the count is `ceil(fraction x N)`.
    Fraction(Decimal),
    /// An absolute number of transactions.
    Count(u64),
}

impl MinSupport {
    /// The least number of transactions an itemset must be in (at least 1).
    pub fn count(self, transactions: u64) -> u64 {
        match self {
            MinSupport::Count(c) => c.max(1),
            MinSupport::Fraction(f) => {
                let c = (f * Decimal::from(transactions)).ceil();
                u64::try_from(c).unwrap_or(u64::MAX).max(1)
            }
        }
    }
}

impl std::str::FromStr for MinSupport {
    type Err = String;

    /// `0.05` (a fraction, with a decimal point) or `120` (a count).
    fn from_str(s: &str) -> Result<MinSupport, String> {
        let s = s.trim();
        if !s.contains('.') {
            return s
                .parse::<u64>()
                .ok()
                .filter(|&c| c >= 1)
                .map(MinSupport::Count)
                .ok_or_else(|| format!("{s:?}: expected a count >= 1 or a fraction such as 0.05"));
        }
        match s.parse::<Decimal>() {
            Ok(f) if f > Decimal::ZERO && f <= Decimal::ONE => Ok(MinSupport::Fraction(f)),
            _ => Err(format!(
                "{s:?}: a fraction must be greater than 0 and at most 1"
            )),
        }
    }
}

/// The largest `max_itemsets` a request may ask for (the default): the itemsets found are
/// held in memory, tens of bytes each.
pub const MAX_ITEMSETS: usize = 5_000_000;

/// The largest `max_len` a request may ask for: far beyond the baskets rules are learned from,
/// and mining stops at [`MAX_ITEMSETS`] long before itemsets get that long.
pub const MAX_LEN: usize = 100;

/// What to mine.
#[derive(Clone, Copy, Debug)]
pub struct MiningOptions {
    pub min_support: MinSupport,
    /// Rules below this confidence are dropped; in [0, 1].
    pub min_confidence: Decimal,
    /// Longest itemset (so the longest antecedent is one less); at least 1.
    pub max_len: usize,
    /// Stop with [`TooManyItemsets`] rather than hold more itemsets than this.
    pub max_itemsets: usize,
}

impl Default for MiningOptions {
    fn default() -> MiningOptions {
        MiningOptions {
            min_support: MinSupport::Fraction(Decimal::new(5, 2)),
            min_confidence: Decimal::new(3, 1),
            max_len: 3,
            max_itemsets: MAX_ITEMSETS,
        }
    }
}

/// Mining stopped: more frequent itemsets than the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "more than {limit} frequent itemsets at a support of {min_count} transactions (of {transactions}); \
     raise --min-support or lower --max-len"
)]
pub struct TooManyItemsets {
    pub limit: usize,
    pub min_count: u64,
    pub transactions: u64,
}

/// A frequent itemset: item indices in increasing order, and how many transactions hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Itemset {
    pub items: Box<[u32]>,
    pub count: u64,
}

/// `antecedent -> consequent`, with the counts every measure is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Item indices in increasing order.
    pub antecedent: Box<[u32]>,
    pub consequent: u32,
    /// Transactions holding antecedent and consequent.
    pub count: u64,
    pub antecedent_count: u64,
    pub consequent_count: u64,
}

/// `num / den` as a `Decimal`; `None` for a zero denominator or figures out of range.
fn quotient((num, den): (i128, u128)) -> Option<Decimal> {
    if den == 0 {
        return None;
    }
    Decimal::from_i128(num)?.checked_div(Decimal::from_u128(den)?)
}

/// The measures of a rule, in the order of [`Rule::fractions`].
pub const MEASURE_NAMES: [&str; 5] = ["support", "confidence", "lift", "leverage", "conviction"];

impl Rule {
    /// Each measure as an exact fraction `(numerator, denominator)` of the counts, in the
    /// order of [`MEASURE_NAMES`]: support = count / N; confidence = count /
    /// antecedent_count; lift = count x N / (antecedent_count x consequent_count); leverage
    /// = (count x N - antecedent_count x consequent_count) / N^2; conviction = (N -
    /// consequent_count) x antecedent_count / (N x (antecedent_count - count)), whose
    /// denominator is zero (infinite) when confidence is 1.
    pub fn fractions(&self, n: u64) -> [(i128, u128); 5] {
        let (c, a, k, n) = (
            self.count as u128,
            self.antecedent_count as u128,
            self.consequent_count as u128,
            n as u128,
        );
        [
            (c as i128, n),
            (c as i128, a),
            ((c * n) as i128, a * k),
            (c as i128 * n as i128 - (a * k) as i128, n * n),
            (((n - k) * a) as i128, n * (a - c)),
        ]
    }

    /// count / N.
    pub fn support(&self, n: u64) -> Decimal {
        quotient(self.fractions(n)[0]).unwrap_or_default()
    }

    /// count / antecedent_count.
    pub fn confidence(&self) -> Decimal {
        quotient((self.count as i128, self.antecedent_count as u128)).unwrap_or_default()
    }

    /// confidence / (consequent_count / N).
    pub fn lift(&self, n: u64) -> Decimal {
        quotient(self.fractions(n)[2]).unwrap_or_default()
    }

    /// support - support(antecedent) x support(consequent).
    pub fn leverage(&self, n: u64) -> Decimal {
        quotient(self.fractions(n)[3]).unwrap_or_default()
    }

    /// (1 - support(consequent)) / (1 - confidence); `None` (infinite) when confidence is 1.
    pub fn conviction(&self, n: u64) -> Option<Decimal> {
        quotient(self.fractions(n)[4])
    }

    /// Orders rules by confidence, then lift, then count, all descending (exact comparisons).
    pub fn strength_cmp(&self, other: &Rule) -> Ordering {
        let conf = |a: &Rule, b: &Rule| a.count as u128 * b.antecedent_count as u128;
        let lift = |a: &Rule, b: &Rule| {
            a.count as u128 * b.antecedent_count as u128 * b.consequent_count as u128
        };
        conf(other, self)
            .cmp(&conf(self, other))
            .then_with(|| lift(other, self).cmp(&lift(self, other)))
            .then_with(|| other.count.cmp(&self.count))
    }
}

/// Frequent itemsets and the rules drawn from them.
#[derive(Clone, Debug, Default)]
pub struct Mined {
    /// N: the number of transactions.
    pub transactions: u64,
    /// Least count an itemset needed.
    pub min_count: u64,
    /// Every frequent itemset, by length then items.
    pub itemsets: Vec<Itemset>,
    /// Rules meeting the confidence threshold, strongest first (ties by item order).
    pub rules: Vec<Rule>,
    /// How many transactions hold each item (every item, frequent or not).
    pub item_counts: Vec<u64>,
}

/// Mines `baskets` (each a list of item indices below `items`, in any order, repeats
/// allowed) for frequent itemsets and single-consequent rules.
pub fn mine(
    baskets: &[Vec<u32>],
    items: usize,
    options: &MiningOptions,
) -> Result<Mined, TooManyItemsets> {
    let n = baskets.len() as u64;
    let min_count = options.min_support.count(n);
    let distinct = Distinct::new(baskets, items);
    let itemsets = distinct.frequent(min_count, options.max_len, options.max_itemsets, n)?;
    let rules = rules(&itemsets, &distinct.item_counts, options.min_confidence);
    Ok(Mined {
        transactions: n,
        min_count,
        itemsets,
        rules,
        item_counts: distinct.item_counts,
    })
}

/// The distinct baskets with their multiplicities, and item counts.
struct Distinct {
    /// Items of each distinct basket, sorted.
    baskets: Vec<Vec<u32>>,
    /// How many transactions each distinct basket stands for.
    weights: Vec<u64>,
    item_counts: Vec<u64>,
}

impl Distinct {
    fn new(baskets: &[Vec<u32>], items: usize) -> Distinct {
        let mut seen: HashMap<Vec<u32>, u64> = HashMap::new();
        for b in baskets {
            let mut b = b.clone();
            b.sort_unstable();
            b.dedup();
            *seen.entry(b).or_default() += 1;
        }
        let mut pairs: Vec<(Vec<u32>, u64)> = seen.into_iter().collect();
        pairs.sort_unstable();
        let mut item_counts = vec![0u64; items];
        for (b, w) in &pairs {
            for &i in b {
                item_counts[i as usize] += w;
            }
        }
        let (baskets, weights) = pairs.into_iter().unzip();
        Distinct {
            baskets,
            weights,
            item_counts,
        }
    }

    fn words(&self) -> usize {
        self.baskets.len().div_ceil(64)
    }

    /// Sums the weights of the baskets in both `a` and `b`.
    fn weight_of_both(&self, a: &[u64], b: &[u64], unit: bool) -> u64 {
        if unit {
            return a
                .iter()
                .zip(b)
                .map(|(x, y)| u64::from((x & y).count_ones()))
                .sum();
        }
        let mut total = 0;
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let mut w = x & y;
            while w != 0 {
                total += self.weights[k * 64 + w.trailing_zeros() as usize];
                w &= w - 1;
            }
        }
        total
    }

    fn frequent(
        &self,
        min_count: u64,
        max_len: usize,
        limit: usize,
        n: u64,
    ) -> Result<Vec<Itemset>, TooManyItemsets> {
        let too_many = TooManyItemsets {
            limit,
            min_count,
            transactions: n,
        };
        // Frequent items, rarest first (fewer long prefixes to extend).
        let mut order: Vec<u32> = (0..self.item_counts.len() as u32)
            .filter(|&i| self.item_counts[i as usize] >= min_count)
            .collect();
        order.sort_by_key(|&i| (self.item_counts[i as usize], i));
        if order.len() > limit {
            return Err(too_many);
        }
        let words = self.words();
        let mut rank = vec![u32::MAX; self.item_counts.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let mut bits = vec![vec![0u64; words]; order.len()];
        for (k, b) in self.baskets.iter().enumerate() {
            for &i in b {
                let r = rank[i as usize];
                if r != u32::MAX {
                    bits[r as usize][k / 64] |= 1 << (k % 64);
                }
            }
        }
        let roots: Vec<Node> = order
            .iter()
            .zip(bits)
            .map(|(&item, bits)| Node {
                item,
                count: self.item_counts[item as usize],
                bits,
            })
            .collect();
        let unit = self.weights.iter().all(|&w| w == 1);
        let found = std::sync::atomic::AtomicUsize::new(roots.len());
        let walker = Walker {
            distinct: self,
            min_count,
            max_len,
            limit,
            unit,
            found: &found,
        };
        let branches: Vec<Option<Vec<Itemset>>> = (0..roots.len())
            .into_par_iter()
            .map(|i| {
                let mut out = Vec::new();
                // No itemset is longer than the frequent items (whatever `max_len` says).
                let mut prefix = Vec::with_capacity(max_len.min(roots.len()));
                walker
                    .extend(&mut prefix, &roots[i], &roots[i + 1..], &mut out)
                    .then_some(out)
            })
            .collect();
        let mut itemsets = Vec::new();
        for b in branches {
            itemsets.extend(b.ok_or(too_many.clone())?);
        }
        if itemsets.len() > limit {
            return Err(too_many);
        }
        itemsets
            .par_sort_unstable_by(|a, b| (a.items.len(), &a.items).cmp(&(b.items.len(), &b.items)));
        Ok(itemsets)
    }
}

/// An item with the baskets holding it together with the current prefix.
struct Node {
    item: u32,
    count: u64,
    bits: Vec<u64>,
}

/// The depth-first walk of Eclat.
struct Walker<'a> {
    distinct: &'a Distinct,
    min_count: u64,
    max_len: usize,
    limit: usize,
    unit: bool,
    found: &'a std::sync::atomic::AtomicUsize,
}

impl Walker<'_> {
    /// Emits `prefix + node` and its frequent extensions by `siblings`; false when the
    /// itemset limit was passed.
    fn extend(
        &self,
        prefix: &mut Vec<u32>,
        node: &Node,
        siblings: &[Node],
        out: &mut Vec<Itemset>,
    ) -> bool {
        prefix.push(node.item);
        let mut items: Box<[u32]> = prefix.as_slice().into();
        items.sort_unstable();
        out.push(Itemset {
            items,
            count: node.count,
        });
        let mut ok = true;
        if prefix.len() < self.max_len && !siblings.is_empty() {
            // Children at the last level are never extended: their baskets are not kept.
            let leaf = prefix.len() + 1 == self.max_len;
            let children: Vec<Node> = siblings
                .iter()
                .filter_map(|s| {
                    let count = self.distinct.weight_of_both(&node.bits, &s.bits, self.unit);
                    (count >= self.min_count).then(|| Node {
                        item: s.item,
                        count,
                        bits: if leaf {
                            Vec::new()
                        } else {
                            node.bits.iter().zip(&s.bits).map(|(a, b)| a & b).collect()
                        },
                    })
                })
                .collect();
            let total = self
                .found
                .fetch_add(children.len(), std::sync::atomic::Ordering::Relaxed)
                + children.len();
            ok = total <= self.limit;
            for (i, child) in children.iter().enumerate() {
                if !ok {
                    break;
                }
                ok = self.extend(prefix, child, &children[i + 1..], out);
            }
        }
        prefix.pop();
        ok
    }
}

/// Single-consequent rules of every itemset of two or more items, strongest first.
fn rules(itemsets: &[Itemset], item_counts: &[u64], min_confidence: Decimal) -> Vec<Rule> {
    // count >= min_confidence x antecedent_count, compared exactly on integers:
    // count x 10^scale >= mantissa x antecedent_count.
    let scale = 10u128.pow(min_confidence.scale());
    let threshold = min_confidence.mantissa().max(0) as u128;
    let counts: HashMap<&[u32], u64> = itemsets.iter().map(|s| (&s.items[..], s.count)).collect();
    let mut rules: Vec<Rule> = itemsets
        .par_iter()
        .filter(|s| s.items.len() >= 2)
        .flat_map_iter(|s| {
            let counts = &counts;
            let mut antecedent = Vec::with_capacity(s.items.len());
            (0..s.items.len()).filter_map(move |k| {
                antecedent.clear();
                antecedent.extend_from_slice(&s.items[..k]);
                antecedent.extend_from_slice(&s.items[k + 1..]);
                let consequent = s.items[k];
                // Every subset of a frequent itemset is frequent, so it is in the map.
                let antecedent_count = *counts.get(&antecedent[..])?;
                let keep = s.count as u128 * scale >= threshold * antecedent_count as u128;
                keep.then(|| Rule {
                    antecedent: antecedent.as_slice().into(),
                    consequent,
                    count: s.count,
                    antecedent_count,
                    consequent_count: item_counts[consequent as usize],
                })
            })
        })
        .collect();
    rules.par_sort_unstable_by(|a, b| {
        a.strength_cmp(b)
            .then_with(|| a.antecedent.cmp(&b.antecedent))
            .then_with(|| a.consequent.cmp(&b.consequent))
    });
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(min_support: MinSupport, min_confidence: Decimal) -> MiningOptions {
        MiningOptions {
            min_support,
            min_confidence,
            ..MiningOptions::default()
        }
    }

    #[test]
    fn min_support_fraction_rounds_up() {
        let f: MinSupport = "0.05".parse().unwrap();
        assert_eq!(f.count(100), 5);
        assert_eq!(f.count(101), 6);
        assert_eq!(f.count(1), 1);
        assert_eq!("7".parse::<MinSupport>().unwrap().count(100), 7);
        assert!("0".parse::<MinSupport>().is_err());
        assert!("1.5".parse::<MinSupport>().is_err());
        assert!("-0.1".parse::<MinSupport>().is_err());
    }

    #[test]
    fn counts_and_measures_by_hand() {
        // Items 0=a 1=b 2=c; 5 baskets: ab, ab, a, bc, abc.
        let baskets = vec![vec![0, 1], vec![1, 0], vec![0], vec![1, 2], vec![0, 1, 2]];
        let m = mine(&baskets, 3, &options(MinSupport::Count(1), Decimal::ZERO)).unwrap();
        let find = |items: &[u32]| {
            m.itemsets
                .iter()
                .find(|s| &s.items[..] == items)
                .unwrap()
                .count
        };
        assert_eq!(find(&[0]), 4);
        assert_eq!(find(&[1]), 4);
        assert_eq!(find(&[0, 1]), 3);
        assert_eq!(find(&[1, 2]), 2);
        assert_eq!(find(&[0, 1, 2]), 1);
        assert_eq!(m.itemsets.len(), 7);
        let rule = |a: &[u32], c: u32| {
            m.rules
                .iter()
                .find(|r| &r.antecedent[..] == a && r.consequent == c)
                .unwrap()
                .clone()
        };
        // a -> b: 3 of 4 hold a, b is in 4 of 5: lift 0.75 / 0.8 = 0.9375.
        let ab = rule(&[0], 1);
        assert_eq!(ab.confidence(), Decimal::new(75, 2));
        assert_eq!(ab.support(5), Decimal::new(6, 1));
        assert_eq!(ab.lift(5), Decimal::new(9375, 4));
        // leverage = 0.6 - 0.8 x 0.8 = -0.04; conviction = 0.2 / 0.25 = 0.8.
        assert_eq!(ab.leverage(5), Decimal::new(-4, 2));
        assert_eq!(ab.conviction(5), Some(Decimal::new(8, 1)));
        // c -> b holds always: conviction is infinite.
        assert_eq!(rule(&[2], 1).conviction(5), None);
        assert_eq!(rule(&[0, 2], 1).confidence(), Decimal::ONE);
    }

    #[test]
    fn confidence_equal_to_the_threshold_is_kept() {
        // a -> b has confidence exactly 3/4.
        let baskets = vec![vec![0, 1], vec![0, 1], vec![0, 1], vec![0]];
        let m = mine(
            &baskets,
            2,
            &options(MinSupport::Count(1), Decimal::new(75, 2)),
        )
        .unwrap();
        assert!(m
            .rules
            .iter()
            .any(|r| r.antecedent[..] == [0] && r.consequent == 1));
        let m = mine(
            &baskets,
            2,
            &options(MinSupport::Count(1), Decimal::new(76, 2)),
        )
        .unwrap();
        assert!(!m
            .rules
            .iter()
            .any(|r| r.antecedent[..] == [0] && r.consequent == 1));
    }

    #[test]
    fn support_threshold_is_inclusive_and_max_len_holds() {
        let baskets = vec![vec![0, 1, 2], vec![0, 1, 2], vec![0, 1], vec![2]];
        let m = mine(&baskets, 3, &options(MinSupport::Count(2), Decimal::ZERO)).unwrap();
        assert!(m
            .itemsets
            .iter()
            .any(|s| s.items[..] == [0, 1, 2] && s.count == 2));
        let short = MiningOptions {
            max_len: 2,
            ..options(MinSupport::Count(2), Decimal::ZERO)
        };
        let m = mine(&baskets, 3, &short).unwrap();
        assert!(m.itemsets.iter().all(|s| s.items.len() <= 2));
    }

    #[test]
    fn too_many_itemsets_is_an_error() {
        let baskets: Vec<Vec<u32>> = (0..10).map(|_| (0..12).collect()).collect();
        let limited = MiningOptions {
            max_itemsets: 100,
            max_len: 12,
            ..options(MinSupport::Count(1), Decimal::ZERO)
        };
        let err = mine(&baskets, 12, &limited).unwrap_err();
        assert_eq!(err.limit, 100);
        assert!(err.to_string().contains("raise --min-support"));
    }
}
