//! The in-memory mirror of the aggregate tables that every read answers from.
//!
//! Each (dimension, key) has a [`Series`]: its occupied slots in order with
//! running sums, so the figures of any slot range are two binary searches and
//! a subtraction, whatever the history size. Distinct customers of a range come
//! from the [`PairIndex`]. The mirror is loaded from the tables at start and
//! then changed only after the consumer's transaction commits, under a lock.

use std::collections::HashMap;

use crate::model::{Delta, Dim, Figures, Measure, Totals};

/// Occupied slots of one series with running sums (`cum[i]` = Σ entries 0..=i).
#[derive(Debug, Clone, Default)]
pub struct Series<T> {
    slots: Vec<i32>,
    cum: Vec<T>,
}

/// A slot as the mirror stores it (saturating; slots of real times fit).
pub(crate) fn narrow(slot: i64) -> i32 {
    i32::try_from(slot).unwrap_or(if slot < 0 { i32::MIN } else { i32::MAX })
}

impl<T: Measure> Series<T> {
    /// Sum of the entries before `slot`.
    pub fn prefix(&self, slot: i64) -> T {
        let s = narrow(slot);
        let i = self.slots.partition_point(|&x| x < s);
        if i == 0 {
            T::default()
        } else {
            self.cum[i - 1]
        }
    }

    /// Sum over `[from, to)`.
    pub fn range(&self, from: i64, to: i64) -> T {
        let mut v = self.prefix(to);
        v.sub(&self.prefix(from));
        v
    }

    pub fn total(&self) -> T {
        self.cum.last().copied().unwrap_or_default()
    }

    pub fn add(&mut self, slot: i64, delta: &T) {
        let s = narrow(slot);
        let i = self.slots.partition_point(|&x| x < s);
        if self.slots.get(i) != Some(&s) {
            let before = if i == 0 {
                T::default()
            } else {
                self.cum[i - 1]
            };
            self.slots.insert(i, s);
            self.cum.insert(i, before);
        }
        for c in &mut self.cum[i..] {
            c.add(delta);
        }
    }

    /// Appends entries given in slot order (loading).
    pub fn push_sorted(&mut self, slot: i64, value: &T) {
        let s = narrow(slot);
        match self.slots.last() {
            Some(&last) if last >= s => self.add(slot, value),
            _ => {
                let mut c = self.total();
                c.add(value);
                self.slots.push(s);
                self.cum.push(c);
            }
        }
    }

    /// The non-zero per-slot values (for checks).
    pub fn entries(&self) -> Vec<(i64, T)> {
        let mut out = Vec::with_capacity(self.slots.len());
        let mut prev = T::default();
        for (s, c) in self.slots.iter().zip(&self.cum) {
            let mut v = *c;
            v.sub(&prev);
            prev = *c;
            if !v.is_zero() {
                out.push((i64::from(*s), v));
            }
        }
        out
    }
}

/// Consecutive orders of each customer as (slot of the order, slot of the
/// customer's previous order, or `i32::MIN` for a first order).
///
/// Customers with an order in `[s, e)` = entries with `cur` in `[s, e)` whose
/// `prev < s` (each customer's first order inside the range). Entries are kept
/// sorted by `cur`, in blocks whose `prev` values are sorted, so a count costs
/// O(B + n/B · log B) over the entries inside the range only (B = 512). New orders come
/// last in time, so they append; the rare out-of-order change goes to small
/// side lists, merged in when they grow.
#[derive(Debug, Default, Clone)]
pub struct PairIndex {
    pairs: Vec<(i32, i32)>,
    block_prev: Vec<Vec<i32>>,
    added: Vec<(i32, i32)>,
    removed: Vec<(i32, i32)>,
}

// Small in unit tests, so blocks and merges are exercised.
// 512: a day at 10M orders a year (~27k entries) costs ~50 block searches
// plus at most two partial blocks.
const BLOCK: usize = if cfg!(test) { 64 } else { 512 };
const SIDE_LIMIT: usize = if cfg!(test) { 100 } else { 4096 };

pub const NO_PREV: i64 = i32::MIN as i64;

impl PairIndex {
    pub fn from_pairs(mut pairs: Vec<(i32, i32)>) -> Self {
        pairs.sort_unstable();
        let block_prev = pairs
            .chunks(BLOCK)
            .map(|c| {
                let mut p: Vec<i32> = c.iter().map(|x| x.1).collect();
                p.sort_unstable();
                p
            })
            .collect();
        Self {
            pairs,
            block_prev,
            added: Vec::new(),
            removed: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len() + self.added.len() - self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the order at `cur` whose customer's previous order is at `prev`.
    pub fn insert(&mut self, cur: i64, prev: i64) {
        let p = (narrow(cur), narrow(prev));
        if let Some(i) = self.removed.iter().position(|x| *x == p) {
            self.removed.swap_remove(i);
            return;
        }
        if self.pairs.last().is_none_or(|l| *l <= p) {
            if self.pairs.len().is_multiple_of(BLOCK) {
                self.block_prev.push(Vec::new());
            }
            self.pairs.push(p);
            if let Some(b) = self.block_prev.last_mut() {
                let at = b.partition_point(|&x| x < p.1);
                b.insert(at, p.1);
            }
        } else {
            self.added.push(p);
            self.maybe_merge();
        }
    }

    pub fn remove(&mut self, cur: i64, prev: i64) {
        let p = (narrow(cur), narrow(prev));
        if let Some(i) = self.added.iter().position(|x| *x == p) {
            self.added.swap_remove(i);
            return;
        }
        self.removed.push(p);
        self.maybe_merge();
    }

    fn maybe_merge(&mut self) {
        if self.added.len() + self.removed.len() <= SIDE_LIMIT {
            return;
        }
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.append(&mut self.added);
        pairs.sort_unstable();
        let mut removed = std::mem::take(&mut self.removed);
        removed.sort_unstable();
        let mut kept = Vec::with_capacity(pairs.len());
        let mut r = removed.iter().peekable();
        for p in pairs {
            while r.peek().is_some_and(|x| **x < p) {
                r.next();
            }
            if r.peek() == Some(&&p) {
                r.next();
                continue;
            }
            kept.push(p);
        }
        *self = Self::from_pairs(kept);
    }

    /// Entries with `cur` in `[s, e)`: (all of them, those with `prev >= s`).
    fn counts(&self, s: i64, e: i64) -> (i64, i64) {
        let (s32, e32) = (narrow(s), narrow(e));
        let lo = self.pairs.partition_point(|p| p.0 < s32);
        let hi = self.pairs.partition_point(|p| p.0 < e32);
        let mut inside = 0usize;
        let mut i = lo;
        while i < hi {
            let block = i / BLOCK;
            let block_end = ((block + 1) * BLOCK).min(self.pairs.len());
            if i % BLOCK == 0 && block_end <= hi {
                let b = &self.block_prev[block];
                inside += b.len() - b.partition_point(|&x| x < s32);
                i = block_end;
            } else {
                let end = block_end.min(hi);
                inside += self.pairs[i..end].iter().filter(|p| p.1 >= s32).count();
                i = end;
            }
        }
        let mut all = (hi - lo) as i64;
        let mut inside = inside as i64;
        for (list, sign) in [(&self.added, 1), (&self.removed, -1)] {
            for p in list.iter().filter(|p| p.0 >= s32 && p.0 < e32) {
                all += sign;
                if p.1 >= s32 {
                    inside += sign;
                }
            }
        }
        (all, inside)
    }

    /// Distinct customers with an order placed in `[s, e)` (slots).
    pub fn customers(&self, s: i64, e: i64) -> i64 {
        let (all, inside) = self.counts(s, e);
        all - inside
    }
}

/// Every aggregate, in memory.
#[derive(Debug, Default, Clone)]
pub struct Mirror {
    pub totals: Series<Totals>,
    pub dims: HashMap<Dim, HashMap<String, Series<Figures>>>,
    pub pairs: PairIndex,
    /// Time of the last applied change (epoch ms), 0 when none.
    pub last_change_at: i64,
}

/// A change to the customer chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PairChange {
    Insert { cur: i64, prev: i64 },
    Remove { cur: i64, prev: i64 },
}

impl Mirror {
    pub fn apply(&mut self, delta: &Delta, pairs: &[PairChange]) {
        for (slot, t) in &delta.slots {
            self.totals.add(*slot, t);
        }
        for (dim, key, slot, f) in delta.cell_iter() {
            let keys = self.dims.entry(dim).or_default();
            match keys.get_mut(key) {
                Some(series) => series.add(slot, f),
                None => keys.entry(key.clone()).or_default().add(slot, f),
            }
        }
        for c in pairs {
            match *c {
                PairChange::Insert { cur, prev } => self.pairs.insert(cur, prev),
                PairChange::Remove { cur, prev } => self.pairs.remove(cur, prev),
            }
        }
    }

    pub fn series(&self, dim: Dim) -> impl Iterator<Item = (&String, &Series<Figures>)> {
        self.dims.get(&dim).into_iter().flat_map(|m| m.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_sums_ranges_and_inserts_in_the_middle() {
        let mut s: Series<Figures> = Series::default();
        let f = |n| Figures {
            orders: n,
            ..Figures::default()
        };
        s.add(10, &f(1));
        s.add(30, &f(3));
        s.add(20, &f(2));
        s.add(20, &f(2));
        assert_eq!(s.range(0, 100).orders, 8);
        assert_eq!(s.range(20, 30).orders, 4);
        assert_eq!(s.range(11, 20).orders, 0);
        assert_eq!(s.prefix(31).orders, 8);
        assert_eq!(s.entries().len(), 3);
    }

    /// Brute force against the index, with appends, out-of-order inserts and
    /// removals, across block and merge boundaries.
    #[test]
    fn pair_index_counts_distinct_customers() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        let mut idx = PairIndex::default();
        let mut truth: Vec<(i64, i64)> = Vec::new();
        for i in 0..12_000i64 {
            let cur = if next(10) == 0 {
                next(3000) as i64
            } else {
                i / 4
            };
            let prev = if next(3) == 0 {
                NO_PREV
            } else {
                cur - next(50) as i64
            };
            idx.insert(cur, prev);
            truth.push((cur, prev));
            if next(20) == 0 {
                let k = next(truth.len() as u64) as usize;
                let (c, p) = truth.swap_remove(k);
                idx.remove(c, p);
            }
        }
        for _ in 0..200 {
            let s = next(3100) as i64;
            let e = s + next(400) as i64;
            let want = truth
                .iter()
                .filter(|(c, p)| *c >= s && *c < e && *p < s)
                .count() as i64;
            assert_eq!(idx.customers(s, e), want, "[{s}, {e})");
        }
        assert_eq!(idx.len(), truth.len());
    }
}
