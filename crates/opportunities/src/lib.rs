//! Which customer should be offered which product next, and did past offers work.
//!
//! - [`mine`]: frequent itemsets and single-consequent association rules over what customers
//!   hold on a day ([`Holdings`]), with exact integer counts;
//! - [`opportunities`]: cross-sell from the rules (fallback popularity) and upsell from usage
//!   near the plan's limits, priced for the customer and ranked by expected MRR gained;
//! - [`offer_report`]: conversion of offers.csv, realised MRR against the forecast;
//! - [`evaluate`]: offline HR@k, precision@k, MAP@k and MRR of the rules recommender against
//!   item-kNN and popularity.
//!
//! Pure functions of a [`expansa_ledger::Book`]: no I/O. Money is exact; probabilities and
//! measures are exact `Decimal` quotients. Only item-kNN's cosine similarities are floats,
//! and they only order candidates.

mod evaluate;
mod holdings;
mod mining;
mod offers;
mod opportunities;
mod pricing;
mod recommend;
mod render;

pub use evaluate::{evaluate, EvaluateOptions, Evaluation, Measures, Score, MEASURES};
pub use holdings::{Holdings, Level};
pub use mining::{
    mine, Itemset, MinSupport, Mined, MiningOptions, Rule, TooManyItemsets, MAX_ITEMSETS, MAX_LEN,
    MEASURE_NAMES,
};
pub use offers::{kind_key, offer_report, realised_gain, OfferDetail, OfferGroup, OfferReport};
pub use opportunities::{
    cross_sell_probability, next_tier, opportunities, upsell_probability, usage_window,
    Opportunities, Opportunity, OpportunityFilter, OpportunityKind, OpportunityOptions, UsageMonth,
    Why,
};
pub use pricing::{median, PriceSource, Prices};
pub use recommend::{ItemKnn, Ranker, Recommender, RuleIndex};
pub use render::*;
