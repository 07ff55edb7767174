//! Compact string storage: one arena per column instead of one allocation per value, and an
//! index from string to position that can be built in parallel.

use hashbrown::{DefaultHashBuilder, HashTable};
use rayon::prelude::*;
use std::hash::BuildHasher;

/// Strings per shard an index is built for: hash tables of 32768 slots hold 28672, so shards
/// built this full stay about three quarters loaded instead of half (power-of-two growth).
const PER_SHARD: usize = 24_000;

/// Shards of an interner that starts empty.
const MIN_SHARDS: usize = 16;

/// A string's shard, from bits of its hash that the tables themselves do not use.
fn shard_of(hash: u64, shards: usize) -> usize {
    ((hash >> 32) as usize) % shards
}

/// A set of strings, each with a dense index in insertion order.
#[derive(Clone)]
pub struct Interner {
    column: TextColumn,
    shards: Vec<HashTable<u32>>,
    hasher: DefaultHashBuilder,
}

impl Default for Interner {
    fn default() -> Self {
        Interner::with_hasher(DefaultHashBuilder::default())
    }
}

/// A string met again: its later index and the index it first had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub index: u32,
    pub first: u32,
}

impl Interner {
    pub fn new() -> Interner {
        Interner::default()
    }

    fn with_hasher(hasher: DefaultHashBuilder) -> Interner {
        Interner {
            column: TextColumn::default(),
            shards: vec![HashTable::new(); MIN_SHARDS],
            hasher,
        }
    }

    /// Indexes a whole column at once, in parallel. Every string keeps its position as
    /// index; a string met again is returned as a [`Duplicate`] and found by
    /// [`Interner::find`] at its first index.
    pub fn from_column(column: TextColumn) -> (Interner, Vec<Duplicate>) {
        let hasher = DefaultHashBuilder::default();
        let shards = column.len().div_ceil(PER_SHARD).max(MIN_SHARDS);
        let shard_ids: Vec<u32> = (0..column.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| shard_of(hasher.hash_one(column.get(i)), shards) as u32)
            .collect();
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); shards];
        for (i, &shard) in shard_ids.iter().enumerate() {
            members[shard as usize].push(i as u32);
        }
        drop(shard_ids);
        // A small column is built on this thread (the pool's hand-over would cost more).
        let per_task = if column.len() < PER_SHARD { shards } else { 1 };
        let built: Vec<(HashTable<u32>, Vec<Duplicate>)> = members
            .into_par_iter()
            .with_min_len(per_task)
            .map(|indices| {
                let mut table = HashTable::with_capacity(indices.len());
                let mut duplicates = Vec::new();
                let hash = |i: u32| hasher.hash_one(column.get(i as usize));
                for i in indices {
                    let s = column.get(i as usize);
                    let h = hash(i);
                    match table.find(h, |&j| column.get(j as usize) == s) {
                        Some(&first) => duplicates.push(Duplicate { index: i, first }),
                        None => {
                            table.insert_unique(h, i, |&j| hash(j));
                        }
                    }
                }
                (table, duplicates)
            })
            .collect();
        let mut tables = Vec::with_capacity(shards);
        let mut duplicates = Vec::new();
        for (table, d) in built {
            tables.push(table);
            duplicates.extend(d);
        }
        duplicates.sort_unstable_by_key(|d| d.index);
        let interner = Interner {
            column,
            shards: tables,
            hasher,
        };
        (interner, duplicates)
    }

    /// The index of `s`, and whether it was already present.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(s);
        let column = &self.column;
        let n = self.shards.len();
        let shard = &mut self.shards[shard_of(hash, n)];
        if let Some(&i) = shard.find(hash, |&i| column.get(i as usize) == s) {
            return (i, true);
        }
        let i = self.column.len() as u32;
        self.column.push(s);
        let (column, hasher) = (&self.column, &self.hasher);
        shard.insert_unique(hash, i, |&j| hasher.hash_one(column.get(j as usize)));
        (i, false)
    }

    /// The index of `s` if present.
    pub fn find(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        self.shards[shard_of(hash, self.shards.len())]
            .find(hash, |&i| self.column.get(i as usize) == s)
            .copied()
    }

    /// The string at `index`.
    pub fn get(&self, index: u32) -> &str {
        self.column.get(index as usize)
    }

    pub fn len(&self) -> usize {
        self.column.len()
    }

    pub fn is_empty(&self) -> bool {
        self.column.len() == 0
    }

    /// All strings, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.column.len()).map(|i| self.column.get(i))
    }
}

/// An append-only column of strings stored end to end in one buffer.
#[derive(Default, Clone)]
pub struct TextColumn {
    text: String,
    ends: Vec<u32>,
}

impl TextColumn {
    /// Room for `values` more values of about `bytes` bytes in all.
    pub fn reserve(&mut self, values: usize, bytes: usize) {
        self.ends.reserve(values);
        self.text.reserve(bytes);
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).expect("text columns stay under 4 GiB"));
    }

    /// Appends every value of `other`, in order.
    pub fn append(&mut self, other: &TextColumn) {
        let offset = u32::try_from(self.text.len()).expect("text columns stay under 4 GiB");
        self.text.push_str(&other.text);
        u32::try_from(self.text.len()).expect("text columns stay under 4 GiB");
        self.ends.extend(other.ends.iter().map(|e| e + offset));
    }

    /// The value at `index` (empty for an absent value, and past the last value pushed: a
    /// column nobody filled costs nothing).
    pub fn get(&self, index: usize) -> &str {
        let Some(&end) = self.ends.get(index) else {
            return "";
        };
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        &self.text[start..end as usize]
    }

    /// The value at `index`, `None` when empty.
    pub fn get_opt(&self, index: usize) -> Option<&str> {
        Some(self.get(index)).filter(|s| !s.is_empty())
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once() {
        let mut i = Interner::new();
        assert_eq!(i.intern("a"), (0, false));
        assert_eq!(i.intern("bb"), (1, false));
        assert_eq!(i.intern("a"), (0, true));
        assert_eq!(i.find("bb"), Some(1));
        assert_eq!(i.find("c"), None);
        assert_eq!(i.get(1), "bb");
        assert_eq!(i.iter().collect::<Vec<_>>(), ["a", "bb"]);
        let many: Vec<u32> = (0..10_000).map(|n| i.intern(&n.to_string()).0).collect();
        assert_eq!(i.find("9999"), Some(many[9999]));
    }

    #[test]
    fn built_in_parallel_like_one_by_one() {
        let words: Vec<String> = (0..20_000).map(|n| format!("id{}", n % 15_000)).collect();
        let mut column = TextColumn::default();
        for w in &words {
            column.push(w);
        }
        let (index, duplicates) = Interner::from_column(column);
        assert_eq!(duplicates.len(), 5_000);
        assert_eq!(
            duplicates[0],
            Duplicate {
                index: 15_000,
                first: 0
            }
        );
        let mut one_by_one = Interner::new();
        for w in &words {
            one_by_one.intern(w);
        }
        for w in &words {
            assert_eq!(
                index.find(w),
                one_by_one.find(w),
                "{w} is found at its first index"
            );
        }
        assert_eq!(index.find("nope"), None);
        let mut grown = index;
        assert_eq!(grown.intern("new"), (20_000, false));
        assert_eq!(grown.find("new"), Some(20_000));
    }

    #[test]
    fn text_column() {
        let mut c = TextColumn::default();
        c.push("x");
        c.push("");
        c.push("yz");
        assert_eq!(c.get(0), "x");
        assert_eq!(c.get_opt(1), None);
        assert_eq!(c.get(2), "yz");
        assert_eq!(c.get_opt(3), None);
        let mut d = TextColumn::default();
        d.push("w");
        d.append(&c);
        assert_eq!((d.len(), d.get(0), d.get(1), d.get(3)), (4, "w", "x", "yz"));
    }
}
