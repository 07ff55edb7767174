//! Compact string storage: one arena per column instead of one allocation per value.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// A set of distinct strings, each given a dense index in insertion order.
#[derive(Default, Clone)]
pub struct Interner {
    column: TextColumn,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Interner {
    pub fn new() -> Interner {
        Interner::default()
    }

    /// The index of `s`, and whether it was already present.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(s);
        let column = &self.column;
        if let Some(&i) = self.table.find(hash, |&i| column.get(i as usize) == s) {
            return (i, true);
        }
        let i = self.column.len() as u32;
        self.column.push(s);
        let (column, hasher) = (&self.column, &self.hasher);
        self.table.insert_unique(hash, i, |&j| {
            hasher.hash_one(column.get(j as usize))
        });
        (i, false)
    }

    /// The index of `s` if present.
    pub fn find(&self, s: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(s);
        self.table
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
    pub fn with_capacity(values: usize, bytes: usize) -> TextColumn {
        TextColumn {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(values),
        }
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(u32::try_from(self.text.len()).expect("text columns stay under 4 GiB"));
    }

    /// The value at `index` (empty for an absent value).
    pub fn get(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        &self.text[start..self.ends[index] as usize]
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
    fn text_column() {
        let mut c = TextColumn::default();
        c.push("x");
        c.push("");
        c.push("yz");
        assert_eq!(c.get(0), "x");
        assert_eq!(c.get_opt(1), None);
        assert_eq!(c.get(2), "yz");
    }
}
