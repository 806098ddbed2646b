//! What an order contributes to the aggregates, as a function of its current
//! state only. Applying an event replaces the order's old contribution with
//! the new one, which makes the consumer idempotent and order-insensitive: the
//! result depends on the highest `seq` seen per order, never on how often or
//! in which order events arrived.
//!
//! Definitions (docs/compatibility.md repeats them):
//! - every figure belongs to the slot in which the order was **placed**;
//! - *gross sales*: totals of orders placed in the period;
//! - *net revenue*: totals of those whose current status is not cancelled,
//!   refunded or deleted ("counted" orders); *AOV* = net revenue / counted orders;
//! - *cancellations* / *refunds*: orders placed in the period whose current
//!   status is cancelled / refunded (refund amount = their totals).

use std::collections::HashMap;

use ecap_core::events::EventLine;

/// Aggregates are kept per 30-minute UTC slot.
pub const SLOT_MS: i64 = 30 * 60 * 1000;

pub fn slot_of(ms: i64) -> i64 {
    ms.div_euclid(SLOT_MS)
}

/// Statuses whose orders do not count towards net revenue.
pub const UNCOUNTED: [&str; 3] = ["cancelled", "refunded", "deleted"];

pub fn counted(status: &str) -> bool {
    !UNCOUNTED.contains(&status)
}

/// The dimensions kept per slot besides the whole-shop totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Status = 1,
    Payment = 2,
    Category = 3,
    Product = 4,
}

impl Dim {
    pub const ALL: [Dim; 4] = [Dim::Status, Dim::Payment, Dim::Category, Dim::Product];

    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.code() == code)
    }
}

/// Whole-shop figures of a slot (or of a sum of slots).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    pub orders: i64,
    pub units: i64,
    pub gross_cents: i64,
    pub net_orders: i64,
    pub net_units: i64,
    pub net_cents: i64,
    pub cancelled: i64,
    pub refunded: i64,
    pub refund_cents: i64,
    pub new_customers: i64,
}

/// Figures of one dimension value (a status, a product …) in a slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    pub orders: i64,
    pub units: i64,
    pub gross_cents: i64,
    pub net_units: i64,
    pub net_cents: i64,
}

/// Component-wise arithmetic for the two figure types.
pub trait Measure: Copy + Default + PartialEq + Send + Sync + 'static {
    fn add(&mut self, other: &Self);
    fn sub(&mut self, other: &Self);
    fn scaled(&self, by: i64) -> Self;
    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

macro_rules! measure {
    ($t:ty, $($f:ident),*) => {
        impl Measure for $t {
            fn add(&mut self, o: &Self) { $(self.$f += o.$f;)* }
            fn sub(&mut self, o: &Self) { $(self.$f -= o.$f;)* }
            fn scaled(&self, by: i64) -> Self { Self { $($f: self.$f * by,)* } }
        }
    };
}
measure!(
    Totals,
    orders,
    units,
    gross_cents,
    net_orders,
    net_units,
    net_cents,
    cancelled,
    refunded,
    refund_cents,
    new_customers
);
measure!(Figures, orders, units, gross_cents, net_units, net_cents);

/// An order's state as the aggregates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    pub key: String,
    pub user_id: i64,
    pub placed_at: i64,
    pub status: String,
    pub seq: i64,
    pub total_cents: i64,
    pub payment_method: String,
    pub lines: Vec<EventLine>,
}

/// A change to the aggregates: deltas per slot and per (dimension, key, slot).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Delta {
    pub slots: HashMap<i64, Totals>,
    /// Per dimension (index `Dim as usize - 1`), key and slot.
    pub cells: [HashMap<String, HashMap<i64, Figures>>; 4],
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.slots.values().all(Measure::is_zero)
            && self
                .cells
                .iter()
                .flat_map(|d| d.values())
                .flat_map(|k| k.values())
                .all(Measure::is_zero)
    }

    pub fn add_slot(&mut self, slot: i64, t: &Totals, sign: i64) {
        self.slots.entry(slot).or_default().add(&t.scaled(sign));
    }

    pub fn add_cell(&mut self, dim: Dim, key: &str, slot: i64, f: &Figures, sign: i64) {
        let keys = &mut self.cells[dim as usize - 1];
        let slots = match keys.get_mut(key) {
            Some(s) => s,
            None => keys.entry(key.to_owned()).or_default(),
        };
        slots.entry(slot).or_default().add(&f.scaled(sign));
    }

    /// Adds (`sign` 1) or removes (`sign` −1) an order's contribution,
    /// except `new_customers`, which the customer bookkeeping decides.
    pub fn order(&mut self, o: &OrderState, sign: i64) {
        let slot = slot_of(o.placed_at);
        let net = counted(&o.status);
        let units: i64 = o.lines.iter().map(|l| l.quantity).sum();
        let whole = Totals {
            orders: 1,
            units,
            gross_cents: o.total_cents,
            net_orders: i64::from(net),
            net_units: if net { units } else { 0 },
            net_cents: if net { o.total_cents } else { 0 },
            cancelled: i64::from(o.status == "cancelled"),
            refunded: i64::from(o.status == "refunded"),
            refund_cents: if o.status == "refunded" {
                o.total_cents
            } else {
                0
            },
            new_customers: 0,
        };
        self.add_slot(slot, &whole, sign);
        let order_figures = Figures {
            orders: 1,
            units,
            gross_cents: o.total_cents,
            net_units: whole.net_units,
            net_cents: whole.net_cents,
        };
        self.add_cell(Dim::Status, &o.status, slot, &order_figures, sign);
        self.add_cell(Dim::Payment, &o.payment_method, slot, &order_figures, sign);
        // Lines of one product (or category) count once as an order.
        let mut products: Vec<(&str, Figures)> = Vec::new();
        let mut categories: Vec<(&str, Figures)> = Vec::new();
        for l in &o.lines {
            let cents = l.quantity * l.unit_price_cents;
            let f = Figures {
                orders: 0,
                units: l.quantity,
                gross_cents: cents,
                net_units: if net { l.quantity } else { 0 },
                net_cents: if net { cents } else { 0 },
            };
            for (list, key) in [
                (&mut products, l.product_id.as_str()),
                (&mut categories, l.category.as_str()),
            ] {
                match list.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, acc)) => acc.add(&f),
                    None => list.push((key, Figures { orders: 1, ..f })),
                }
            }
        }
        for (k, f) in products {
            self.add_cell(Dim::Product, k, slot, &f, sign);
        }
        for (k, f) in categories {
            self.add_cell(Dim::Category, k, slot, &f, sign);
        }
    }

    /// Drops entries that cancelled out.
    pub fn compact(&mut self) {
        self.slots.retain(|_, v| !v.is_zero());
        for keys in &mut self.cells {
            for slots in keys.values_mut() {
                slots.retain(|_, v| !v.is_zero());
            }
            keys.retain(|_, v| !v.is_empty());
        }
    }

    /// Every cell as (dimension, key, slot, figures).
    pub fn cell_iter(&self) -> impl Iterator<Item = (Dim, &String, i64, &Figures)> {
        Dim::ALL.into_iter().flat_map(move |dim| {
            self.cells[dim as usize - 1]
                .iter()
                .flat_map(move |(k, slots)| slots.iter().map(move |(s, f)| (dim, k, *s, f)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: &str) -> OrderState {
        OrderState {
            key: "1".into(),
            user_id: 7,
            placed_at: 3 * SLOT_MS + 5,
            status: status.into(),
            seq: 1,
            total_cents: 1_000,
            payment_method: "upi".into(),
            lines: vec![
                EventLine {
                    product_id: "p".into(),
                    category: "Books".into(),
                    quantity: 2,
                    unit_price_cents: 300,
                },
                EventLine {
                    product_id: "p".into(),
                    category: "Books".into(),
                    quantity: 1,
                    unit_price_cents: 400,
                },
            ],
        }
    }

    #[test]
    fn a_status_change_moves_only_what_depends_on_status() {
        let mut d = Delta::default();
        d.order(&order("pending"), 1);
        d.order(&order("pending"), -1);
        d.order(&order("cancelled"), 1);
        d.compact();
        let s = d.slots[&3];
        assert_eq!((s.orders, s.units, s.gross_cents), (1, 3, 1_000));
        assert_eq!((s.net_orders, s.net_cents, s.cancelled), (0, 0, 1));
        let cell = |d: &Delta, dim: Dim, k: &str| {
            d.cells[dim as usize - 1]
                .get(k)
                .and_then(|s| s.get(&3))
                .copied()
                .unwrap_or_default()
        };
        let p = cell(&d, Dim::Product, "p");
        assert_eq!(
            (p.orders, p.units, p.gross_cents, p.net_cents),
            (1, 3, 1_000, 0)
        );
        let mut moved = Delta::default();
        moved.order(&order("pending"), -1);
        moved.order(&order("cancelled"), 1);
        moved.compact();
        assert_eq!(cell(&moved, Dim::Status, "pending").orders, -1);
        assert_eq!(cell(&moved, Dim::Status, "cancelled").orders, 1);
        let c = cell(&moved, Dim::Category, "Books");
        assert_eq!((c.orders, c.units, c.net_cents), (0, 0, -1_000));
    }

    #[test]
    fn slots_are_half_hours_also_before_1970() {
        assert_eq!(slot_of(0), 0);
        assert_eq!(slot_of(SLOT_MS - 1), 0);
        assert_eq!(slot_of(-1), -1);
    }
}
