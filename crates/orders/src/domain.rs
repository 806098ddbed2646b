//! Order rules without I/O: statuses and the transition table, payment methods,
//! retention windows, detail-request reasons, money on the wire.

use serde_json::Value;

pub const DAY_MS: i64 = 86_400_000;
/// Cancelled and deleted orders stay visible (and detail requests may be filed) this long.
pub const RETENTION_MS: i64 = 30 * DAY_MS;
/// A delivered order may be returned (cancellation request) this long after delivery.
pub const RETURN_WINDOW_MS: i64 = 7 * DAY_MS;
/// A customer's own soft delete can be undone (restoration request) this long.
pub const RESTORE_WINDOW_MS: i64 = 30 * DAY_MS;

/// Lines per order, units per line: generous, but bounded.
pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pending,
    Processing,
    Shipped,
    OutForDelivery,
    Delivered,
    CancelRequested,
    Cancelled,
    RefundProcessing,
    Refunded,
    Deleted,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Pending,
        Status::Processing,
        Status::Shipped,
        Status::OutForDelivery,
        Status::Delivered,
        Status::CancelRequested,
        Status::Cancelled,
        Status::RefundProcessing,
        Status::Refunded,
        Status::Deleted,
    ];

    /// What `PUT /:id/status` accepts as a value at all (the contract's list).
    pub const SETTABLE: [Status; 8] = [
        Status::Pending,
        Status::Processing,
        Status::Shipped,
        Status::OutForDelivery,
        Status::Delivered,
        Status::Cancelled,
        Status::RefundProcessing,
        Status::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::OutForDelivery => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::CancelRequested => "cancel_requested",
            Self::Cancelled => "cancelled",
            Self::RefundProcessing => "refund_processing",
            Self::Refunded => "refunded",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Where an admin may move an order with `PUT /:id/status` (the original's
    /// admin UI, §8.1). `cancel_requested` is left only through approve/reject;
    /// `deleted` only by restoring nothing — it is final.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Pending => &[Processing, Cancelled],
            Processing => &[Shipped, Cancelled],
            Shipped => &[OutForDelivery, Cancelled],
            OutForDelivery => &[Delivered, Cancelled],
            Cancelled => &[RefundProcessing],
            RefundProcessing => &[Refunded],
            Delivered | CancelRequested | Refunded | Deleted => &[],
        }
    }

    pub fn can_become(self, to: Status) -> bool {
        self.next().contains(&to)
    }

    /// Whether the order's goods are out of stock on its account: placed and
    /// not given back. Delivered goods stay sold; a cancellation (also a return
    /// after delivery) gives them back.
    pub fn holds_stock(self, before_deletion: Option<Status>) -> bool {
        use Status::*;
        match self {
            Pending | Processing | Shipped | OutForDelivery | Delivered | CancelRequested => true,
            Cancelled | RefundProcessing | Refunded => false,
            Deleted => before_deletion == Some(Delivered),
        }
    }

    /// A customer may ask to cancel: before shipping, or within 7 days of delivery.
    pub fn cancellable_by_customer(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Delivered)
    }

    /// The label of the tracking timeline.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "Order Placed",
            Self::Processing => "Processing",
            Self::Shipped => "Shipped",
            Self::OutForDelivery => "Out for Delivery",
            Self::Delivered => "Delivered",
            Self::CancelRequested => "Cancellation Requested",
            Self::Cancelled => "Cancelled",
            Self::RefundProcessing => "Refund Processing",
            Self::Refunded => "Refunded",
            Self::Deleted => "Deleted",
        }
    }
}

/// "processing, cancelled" or "none".
pub fn names(list: &[Status]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub const PAYMENT_METHODS: [&str; 9] = [
    "credit_card",
    "debit_card",
    "paypal",
    "cash",
    "cod",
    "card",
    "upi",
    "netbanking",
    "wallet",
];

pub const DETAIL_REASONS: [&str; 6] = [
    "Need invoice / billing proof",
    "Warranty / service claim",
    "Bank / payment dispute",
    "Return / replacement reference",
    "Tax / accounting",
    "Other",
];

/// `1234` → `"12.34"` (the contract's DECIMAL-as-string).
pub fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// `1234` → `12.34` (the contract's numbers).
pub fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

pub use ecap_core::extract::json_int as parse_int;

/// A money amount from JSON (number or string, ≥ 0, ≤ 2 decimals) in cents.
pub fn parse_cents(v: &Value) -> Option<i64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    if text.starts_with('-') {
        return None;
    }
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// Which saved or inline address an order ships to, normalised.
pub fn address_from_json(v: &Value) -> Result<Value, &'static str> {
    const MSG: &str = "Shipping address is required";
    match v {
        Value::String(s) if !s.trim().is_empty() => {
            if s.len() > 2000 {
                return Err("Shipping address is limited to 2000 characters");
            }
            Ok(Value::String(s.trim().to_owned()))
        }
        Value::Object(map) if !map.is_empty() => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s.trim().to_owned(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(_) | Value::Null => continue,
                    _ => return Err("Shipping address fields must be text"),
                };
                if k.len() > 64 || text.chars().count() > 500 {
                    return Err("Shipping address fields are limited to 500 characters");
                }
                out.insert(k.clone(), Value::String(text));
            }
            let filled = out
                .values()
                .any(|v| v.as_str().is_some_and(|s| !s.is_empty()));
            if !filled {
                return Err(MSG);
            }
            Ok(Value::Object(out))
        }
        _ => Err(MSG),
    }
}

/// The visibility of a cancelled or deleted order to its customer (§8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub can_view: bool,
    pub can_request: bool,
}

/// `base` is `deleted_at` for deleted orders, `cancelled_at` for cancelled
/// ones (and refund states that followed a cancellation); `approved` whether
/// the caller holds an approved detail request; `open` whether one is pending
/// or approved (then no new one may be filed).
pub fn retention(
    status: Status,
    base: Option<i64>,
    approved: bool,
    open: bool,
    now: i64,
) -> Retention {
    let within = base.is_some_and(|b| now - b <= RETENTION_MS);
    match status {
        Status::Deleted => Retention {
            can_view: approved,
            can_request: within && !open,
        },
        Status::Cancelled => Retention {
            can_view: approved || within,
            can_request: within && !open,
        },
        _ => Retention {
            can_view: true,
            can_request: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("lost"), None);
    }

    #[test]
    fn the_transition_table_is_the_admin_ui() {
        assert!(Status::Pending.can_become(Status::Processing));
        assert!(!Status::Delivered.can_become(Status::Pending));
        assert!(!Status::Deleted.can_become(Status::Processing));
        assert!(!Status::Refunded.can_become(Status::Cancelled));
        assert_eq!(names(Status::Shipped.next()), "out_for_delivery, cancelled");
        assert_eq!(names(Status::Refunded.next()), "none");
    }

    #[test]
    fn money_on_the_wire() {
        assert_eq!(decimal(12345), "123.45");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(parse_cents(&serde_json::json!(19.99)), Some(1999));
        assert_eq!(parse_cents(&serde_json::json!("7")), Some(700));
        assert_eq!(parse_cents(&serde_json::json!(1.999)), None);
        assert_eq!(parse_cents(&serde_json::json!(-1)), None);
    }

    #[test]
    fn retention_windows() {
        let now = 100 * DAY_MS;
        let fresh = Some(now - DAY_MS);
        let old = Some(now - 31 * DAY_MS);
        let r = retention(Status::Deleted, fresh, false, false, now);
        assert_eq!((r.can_view, r.can_request), (false, true));
        let r = retention(Status::Cancelled, fresh, false, false, now);
        assert_eq!((r.can_view, r.can_request), (true, true));
        let r = retention(Status::Cancelled, old, false, false, now);
        assert_eq!((r.can_view, r.can_request), (false, false));
        let r = retention(Status::Cancelled, old, true, true, now);
        assert_eq!((r.can_view, r.can_request), (true, false));
        let r = retention(Status::Delivered, None, false, false, now);
        assert!(r.can_view && !r.can_request);
    }

    #[test]
    fn retention_is_thirty_days_of_elapsed_time_across_a_dst_change() {
        // Europe/Berlin moved to summer time on 2026-03-29: from 1 March 00:00
        // CET (2026-02-28T23:00Z) to 31 March 00:00 CEST (2026-03-30T22:00Z)
        // are 30 local days but 30 × 24 h − 1 h.
        let (base, local_30_days) = (1_772_319_600_000, 1_774_908_000_000);
        assert_eq!(local_30_days - base, RETENTION_MS - 3_600_000);
        let view = |now| retention(Status::Cancelled, Some(base), false, false, now).can_view;
        assert!(view(local_30_days));
        assert!(view(base + RETENTION_MS));
        assert!(!view(base + RETENTION_MS + 1));
        // Back to winter time on 2026-10-25: 25 October 00:00 CEST
        // (2026-10-24T22:00Z) to 24 November 00:00 CET (2026-11-23T23:00Z) are
        // 30 local days and 30 × 24 h + 1 h: the window closed an hour before.
        let (base, local_30_days) = (1_792_879_200_000, 1_795_474_800_000);
        assert_eq!(local_30_days - base, RETENTION_MS + 3_600_000);
        let view = |now| retention(Status::Cancelled, Some(base), false, false, now).can_view;
        assert!(view(base + RETENTION_MS));
        assert!(!view(local_30_days - 3_600_000 + 1));
        assert!(!view(local_30_days));
        let request = |now| retention(Status::Deleted, Some(base), false, false, now).can_request;
        assert!(request(base + RETENTION_MS) && !request(local_30_days));
    }

    #[test]
    fn addresses() {
        assert!(address_from_json(&serde_json::json!({})).is_err());
        assert!(address_from_json(&serde_json::json!("")).is_err());
        assert!(
            address_from_json(&serde_json::json!({"street": "1 Main", "zipCode": 12345})).is_ok()
        );
        assert!(address_from_json(&serde_json::json!({"street": {"x": 1}})).is_err());
    }
}
