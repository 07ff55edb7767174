//! Figures that add up over groups of customers, kept up to date on a book held in parts
//! (the store's latest book: a base, and pieces of the customers changed since).

use expansa_ledger::{Book, CustomerIdx};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The named cells of a report that adds up over groups of customers (the KPIs' cells, for
/// one), on a book held as a base and pieces (as [`report_of_parts`](crate::report_of_parts)
/// holds it): the base's cells, minus the changed customers' cells in the base, plus their
/// cells in their latest piece. Each group's cells are those of a [`Book::part`] with its
/// customers' rows, so the total is the whole book's, name by name.
///
/// That holds while no contract or revision spans two customers ([`Book::contract_owners`]):
/// the base's owners are given, the pieces' lines are checked against them and each other,
/// and a piece that makes one span leaves the cells not adding up ([`CellsOfParts::update`]
/// answers `false`: read the book whole).
pub struct CellsOfParts {
    /// How many pieces are counted.
    pieces: usize,
    /// The piece each changed customer's rows were last counted from (by customer id).
    source: HashMap<String, usize>,
    cells: BTreeMap<String, i128>,
    /// The customer of each contract the base's lines name ([`Book::contract_owners`]).
    base_owners: std::sync::Arc<HashMap<u64, CustomerIdx>>,
    /// The customer (id) of each contract the pieces' lines name.
    piece_owners: HashMap<u64, String>,
    /// Whether the cells still add up (no piece made a contract or revision span customers).
    adds_up: bool,
}

impl CellsOfParts {
    /// The cells of the base book and the customers of its contracts
    /// ([`Book::contract_owners`]), no piece counted yet.
    pub fn new(
        base: BTreeMap<String, i128>,
        owners: std::sync::Arc<HashMap<u64, CustomerIdx>>,
    ) -> CellsOfParts {
        CellsOfParts {
            pieces: 0,
            source: HashMap::new(),
            cells: base,
            base_owners: owners,
            piece_owners: HashMap::new(),
            adds_up: true,
        }
    }

    /// Whether the pieces' lines keep every contract and revision within one customer (else
    /// the cells do not add up to the book's).
    fn within_customers(&mut self, base: &Book, piece: &Book) -> bool {
        let Some(owners) = piece.contract_owners() else {
            return false;
        };
        for (key, owner_in_piece) in owners {
            let customer = piece.customers.ids.get(owner_in_piece);
            if let Some(&owner) = self.base_owners.get(&key) {
                if base.customers.ids.get(owner) != customer {
                    return false;
                }
            }
            let known = self
                .piece_owners
                .entry(key)
                .or_insert_with(|| customer.to_string());
            if known != customer {
                return false;
            }
        }
        true
    }

    /// How many pieces are counted (an older book in parts has fewer: start anew from the
    /// base's cells for it).
    pub fn pieces(&self) -> usize {
        self.pieces
    }

    /// The cells of the book as counted so far (those that are not zero).
    pub fn cells(&self) -> &BTreeMap<String, i128> {
        &self.cells
    }

    /// Counts the pieces not counted yet (`pieces`: every piece since `base`, oldest first,
    /// each a book with all the rows of its customers): each of their customers leaves the
    /// book it was counted from (the base, or an older piece) for the last piece that holds
    /// it. `cells_of` gives a part's cells; it is called once per book left or joined, with the
    /// part of the customers moving, so the work is in proportion to the customers changed
    /// since the last count (and a scan of the base's rows when some leave it). `false` when
    /// the cells no longer add up to the book's (a piece made a contract or a revision span
    /// customers): they are not counted then, nor ever again from this base.
    pub fn update(
        &mut self,
        base: &Book,
        pieces: &[(&Book, &BTreeSet<String>)],
        mut cells_of: impl FnMut(&Book) -> Vec<(String, i128)>,
    ) -> bool {
        for (piece, _) in pieces.iter().skip(self.pieces) {
            self.adds_up = self.adds_up && self.within_customers(base, piece);
        }
        if !self.adds_up {
            return false;
        }
        let mut latest: HashMap<&str, usize> = HashMap::new();
        for (i, (_, customers)) in pieces.iter().enumerate().skip(self.pieces) {
            for c in customers.iter() {
                latest.insert(c.as_str(), i);
            }
        }
        // By book (`None`: the base; else a piece): the customers whose rows leave it (-1) or
        // join it (+1).
        let mut moves: BTreeMap<(Option<usize>, i128), Vec<&str>> = BTreeMap::new();
        for (&c, &to) in &latest {
            let from = self.source.get(c).copied();
            moves.entry((from, -1)).or_default().push(c);
            moves.entry((Some(to), 1)).or_default().push(c);
        }
        for ((of, sign), customers) in moves {
            let book = of.map_or(base, |i| pieces[i].0);
            let mut keep = vec![false; book.customers.len()];
            let mut any = false;
            for c in customers {
                if let Some(k) = book.customers.ids.find(c) {
                    keep[k as usize] = true;
                    any = true;
                }
            }
            if any {
                for (name, units) in cells_of(&book.part(&keep)) {
                    *self.cells.entry(name).or_default() += sign * units;
                }
            }
        }
        for (c, to) in latest {
            self.source.insert(c.to_string(), to);
        }
        self.pieces = pieces.len();
        self.cells.retain(|_, units| *units != 0);
        true
    }
}
