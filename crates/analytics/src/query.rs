//! Periods, time zones and the figures every endpoint answers with, computed
//! from the in-memory mirror.

use jiff::{Timestamp, ToSpan, ZonedDateTime as Zoned, civil::Date, tz::TimeZone};
use serde::Serialize;

use crate::{
    memory::Mirror,
    model::{Dim, Figures, Measure, SLOT_MS, Totals, slot_of},
};

/// At most this many buckets in one series (e.g. 208 days hourly, 13 years
/// daily); larger requests are refused with 400.
pub const MAX_BUCKETS: usize = 5_000;
/// Custom ranges span at most this many days.
pub const MAX_DAYS: i64 = 3_700;

/// The periods the endpoints accept.
pub const PERIODS: [&str; 6] = ["today", "7d", "30d", "90d", "12m", "custom"];

/// The order statuses, in lifecycle order.
pub const STATUSES: [&str; 10] = [
    "pending",
    "processing",
    "shipped",
    "out_for_delivery",
    "delivered",
    "cancel_requested",
    "cancelled",
    "refund_processing",
    "refunded",
    "deleted",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => Self::Hour,
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            _ => return None,
        })
    }
}

/// A refused request parameter: (parameter, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam(pub &'static str, pub String);

fn bad(param: &'static str, msg: impl Into<String>) -> BadParam {
    BadParam(param, msg.into())
}

/// A half-open interval of instants, `[from, to)` in epoch ms, on slot
/// boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    pub fn slots(&self) -> (i64, i64) {
        (slot_of(self.from), slot_of(self.to))
    }
}

/// A resolved period: where it is, the one before, and the time zone.
#[derive(Debug, Clone)]
pub struct Period {
    pub name: String,
    pub tz: TimeZone,
    pub tz_name: String,
    /// First and last local day of the period.
    pub first_day: Date,
    pub last_day: Date,
    pub current: Window,
    pub previous: Window,
    pub today: Window,
}

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct PeriodQuery {
    pub period: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
}

pub fn zone(name: &str) -> Result<TimeZone, BadParam> {
    TimeZone::get(name).map_err(|_| {
        bad(
            "tz",
            format!("unknown time zone {name:?}: use an IANA name such as UTC or Asia/Kolkata"),
        )
    })
}

fn start_of(day: Date, tz: &TimeZone) -> Result<i64, BadParam> {
    let z = day
        .to_zoned_datetime(tz.clone())
        .map_err(|e| bad("from", format!("{day}: {e}")))?;
    aligned(z.timestamp().as_millisecond(), tz)
}

/// Buckets are 30-minute slots: boundaries must fall on one.
fn aligned(ms: i64, tz: &TimeZone) -> Result<i64, BadParam> {
    if ms.rem_euclid(SLOT_MS) != 0 {
        return Err(bad(
            "tz",
            format!(
                "time zone {} has a UTC offset that is not a multiple of 30 minutes; \
                 analytics are kept in 30-minute buckets",
                tz.iana_name().unwrap_or("given")
            ),
        ));
    }
    Ok(ms)
}

/// The shape of `from` and `to`: a plain date of the years 1000–9999 (jiff
/// would also read signed and six-digit years, whose periods cannot be
/// written back as RFC 3339). The document publishes it as their pattern.
pub const DATE_PATTERN: &str = "^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$";

fn plain_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && (b'1'..=b'9').contains(&b[0])
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

fn parse_day(param: &'static str, s: &str) -> Result<Date, BadParam> {
    if !plain_date(s) {
        return Err(bad(
            param,
            format!("{param} must be a date like 2026-01-31 (years 1000–9999), got {s:?}"),
        ));
    }
    s.parse::<Date>().map_err(|_| {
        bad(
            param,
            format!("{param} must be a date like 2026-01-31, got {s:?}"),
        )
    })
}

fn add_days(d: Date, n: i64) -> Result<Date, BadParam> {
    d.checked_add(n.days())
        .map_err(|_| bad("period", "date out of range"))
}

fn add_months(d: Date, n: i64) -> Result<Date, BadParam> {
    d.checked_add(n.months())
        .map_err(|_| bad("period", "date out of range"))
}

impl Period {
    /// Resolves a period at `now` (epoch ms). `default` is the period when
    /// the caller names none.
    pub fn resolve(
        q: &PeriodQuery,
        default_period: &str,
        default_tz: &str,
        now: i64,
    ) -> Result<Self, BadParam> {
        let tz_name = q.tz.clone().unwrap_or_else(|| default_tz.to_owned());
        let tz = zone(&tz_name)?;
        let now_ts = Timestamp::from_millisecond(now).map_err(|_| bad("now", "bad clock"))?;
        let today = now_ts.to_zoned_datetime(tz.clone()).date();
        let custom = q.from.is_some() || q.to.is_some();
        let name = match (&q.period, custom) {
            (Some(p), _) if !PERIODS.contains(&p.as_str()) => {
                return Err(bad(
                    "period",
                    format!("unknown period {p:?}: use one of {}", PERIODS.join(", ")),
                ));
            }
            (Some(p), true) if p != "custom" => {
                return Err(bad(
                    "period",
                    "from/to go with period=custom (or no period)",
                ));
            }
            (Some(p), false) if p == "custom" => {
                return Err(bad("from", "period=custom needs from and to"));
            }
            (_, true) => "custom".to_owned(),
            (Some(p), false) => p.clone(),
            (None, false) => default_period.to_owned(),
        };
        let (first_day, last_day, prev_first, prev_last) = match name.as_str() {
            "today" => {
                let y = add_days(today, -1)?;
                (today, today, y, y)
            }
            "7d" | "30d" | "90d" => {
                let n: i64 = match name.as_str() {
                    "7d" => 7,
                    "30d" => 30,
                    _ => 90,
                };
                let first = add_days(today, -(n - 1))?;
                (first, today, add_days(first, -n)?, add_days(first, -1)?)
            }
            "12m" => {
                let first = add_months(today.first_of_month(), -11)?;
                (
                    first,
                    today,
                    add_months(first, -12)?,
                    add_months(today, -12)?,
                )
            }
            _ => {
                let (Some(from), Some(to)) = (&q.from, &q.to) else {
                    return Err(bad("from", "a custom period needs both from and to"));
                };
                let from = parse_day("from", from)?;
                let to = parse_day("to", to)?;
                if from > to {
                    return Err(bad("from", format!("from ({from}) is after to ({to})")));
                }
                let days = (to - from).get_days() as i64 + 1;
                if !(1..=MAX_DAYS).contains(&days) {
                    return Err(bad(
                        "to",
                        format!("a custom period spans at most {MAX_DAYS} days, this one {days}"),
                    ));
                }
                (from, to, add_days(from, -days)?, add_days(from, -1)?)
            }
        };
        let window = |a: Date, b: Date| -> Result<Window, BadParam> {
            Ok(Window {
                from: start_of(a, &tz)?,
                to: start_of(add_days(b, 1)?, &tz)?,
            })
        };
        Ok(Self {
            current: window(first_day, last_day)?,
            previous: window(prev_first, prev_last)?,
            today: window(today, today)?,
            name,
            tz_name,
            first_day,
            last_day,
            tz,
        })
    }

    /// The buckets of a series over the period, oldest first: (label, window).
    pub fn buckets(&self, g: Granularity) -> Result<Vec<(String, Window)>, BadParam> {
        let days = (self.last_day - self.first_day).get_days() as i64 + 1;
        let estimate = match g {
            Granularity::Hour => days * 24,
            Granularity::Day => days,
            Granularity::Week => days / 7 + 2,
            Granularity::Month => days / 28 + 2,
        };
        if estimate as usize > MAX_BUCKETS {
            return Err(bad(
                "granularity",
                format!(
                    "{estimate} {g:?} buckets requested; a series has at most {MAX_BUCKETS} \
                     (hourly up to 208 days, daily up to 13 years): pick a coarser granularity \
                     or a shorter range"
                )
                .to_lowercase(),
            ));
        }
        let mut out = Vec::new();
        let end = self.current.to;
        match g {
            Granularity::Hour => {
                let start = Timestamp::from_millisecond(self.current.from)
                    .map_err(|_| bad("from", "out of range"))?
                    .to_zoned_datetime(self.tz.clone());
                let mut at: Zoned = start;
                loop {
                    let from = at.timestamp().as_millisecond();
                    if from >= end {
                        break;
                    }
                    let next = at
                        .checked_add(1.hour())
                        .map_err(|_| bad("to", "out of range"))?;
                    let to = next.timestamp().as_millisecond().min(end);
                    out.push((
                        at.strftime("%Y-%m-%dT%H:%M").to_string(),
                        Window { from, to },
                    ));
                    at = next;
                }
            }
            Granularity::Day | Granularity::Week | Granularity::Month => {
                let mut day = self.first_day;
                while day <= self.last_day {
                    let next = match g {
                        Granularity::Day => add_days(day, 1)?,
                        Granularity::Week => {
                            let back = i64::from(day.weekday().to_monday_zero_offset());
                            add_days(add_days(day, -back)?, 7)?
                        }
                        _ => add_months(day.first_of_month(), 1)?,
                    };
                    let stop = next.min(add_days(self.last_day, 1)?);
                    let label = match g {
                        Granularity::Week => {
                            let back = i64::from(day.weekday().to_monday_zero_offset());
                            add_days(day, -back)?.to_string()
                        }
                        Granularity::Month => day.strftime("%Y-%m").to_string(),
                        _ => day.to_string(),
                    };
                    out.push((
                        label,
                        Window {
                            from: start_of(day, &self.tz)?,
                            to: start_of(stop, &self.tz)?,
                        },
                    ));
                    day = stop;
                }
            }
        }
        Ok(out)
    }
}

pub fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// Whole-shop figures of a window, with distinct customers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Kpis {
    pub t: Totals,
    pub customers: i64,
}

pub fn kpis(m: &Mirror, w: Window) -> Kpis {
    let (s, e) = w.slots();
    Kpis {
        t: m.totals.range(s, e),
        customers: m.pairs.customers(s, e),
    }
}

/// A KPI card: this period, the previous one, the change in percent (null
/// when the previous value is zero).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub value: f64,
    pub previous: f64,
    pub change_percent: Option<f64>,
}

pub fn card(value: f64, previous: f64) -> Card {
    let change_percent = if previous == 0.0 {
        None
    } else {
        Some(((value - previous) / previous.abs() * 10_000.0).round() / 100.0)
    };
    Card {
        value,
        previous,
        change_percent,
    }
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 / b as f64 * 10_000.0).round() / 10_000.0
    }
}

/// AOV in currency units, rounded to the cent.
pub fn aov(k: &Kpis) -> f64 {
    if k.t.net_orders == 0 {
        0.0
    } else {
        ((k.t.net_cents as f64 / k.t.net_orders as f64).round()) / 100.0
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KpiCards {
    pub gross_sales: Card,
    pub net_revenue: Card,
    pub orders: Card,
    pub counted_orders: Card,
    pub units: Card,
    pub aov: Card,
    pub customers: Card,
    pub new_customers: Card,
    pub returning_customers: Card,
    pub cancellations: Card,
    pub cancellation_rate: Card,
    pub refunds: Card,
    pub refund_amount: Card,
}

pub fn cards(c: &Kpis, p: &Kpis) -> KpiCards {
    let n = |k: &Kpis, f: fn(&Totals) -> i64| f(&k.t) as f64;
    KpiCards {
        gross_sales: card(money(c.t.gross_cents), money(p.t.gross_cents)),
        net_revenue: card(money(c.t.net_cents), money(p.t.net_cents)),
        orders: card(n(c, |t| t.orders), n(p, |t| t.orders)),
        counted_orders: card(n(c, |t| t.net_orders), n(p, |t| t.net_orders)),
        units: card(n(c, |t| t.units), n(p, |t| t.units)),
        aov: card(aov(c), aov(p)),
        customers: card(c.customers as f64, p.customers as f64),
        new_customers: card(n(c, |t| t.new_customers), n(p, |t| t.new_customers)),
        returning_customers: card(
            (c.customers - c.t.new_customers) as f64,
            (p.customers - p.t.new_customers) as f64,
        ),
        cancellations: card(n(c, |t| t.cancelled), n(p, |t| t.cancelled)),
        cancellation_rate: card(
            ratio(c.t.cancelled, c.t.orders),
            ratio(p.t.cancelled, p.t.orders),
        ),
        refunds: card(n(c, |t| t.refunded), n(p, |t| t.refunded)),
        refund_amount: card(money(c.t.refund_cents), money(p.t.refund_cents)),
    }
}

/// One row of a breakdown (product, category, status, payment method).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub key: String,
    pub orders: i64,
    /// Units in all orders placed in the period.
    pub units: i64,
    /// Units in counted orders (not cancelled, refunded or deleted).
    pub units_sold: i64,
    pub gross_sales: f64,
    /// Net revenue: line totals (or order totals) of counted orders.
    pub revenue: f64,
}

fn row(key: &str, f: &Figures) -> Row {
    Row {
        key: key.to_owned(),
        orders: f.orders,
        units: f.units,
        units_sold: f.net_units,
        gross_sales: money(f.gross_cents),
        revenue: money(f.net_cents),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Revenue,
    Units,
}

/// Figures per key of a dimension over a window (`None`: all time), keys with
/// no order left out unless listed in `always`; sorted by the measure, then key.
pub fn breakdown(m: &Mirror, dim: Dim, w: Option<Window>, sort: Sort, always: &[&str]) -> Vec<Row> {
    let mut rows: Vec<(String, Figures)> = m
        .series(dim)
        .map(|(k, s)| {
            let f = match w {
                Some(w) => {
                    let (a, b) = w.slots();
                    s.range(a, b)
                }
                None => s.total(),
            };
            (k.clone(), f)
        })
        .filter(|(k, f)| !f.is_zero() || always.contains(&k.as_str()))
        .collect();
    for k in always {
        if !rows.iter().any(|(r, _)| r == k) {
            rows.push(((*k).to_owned(), Figures::default()));
        }
    }
    rows.retain(|(_, f)| f.orders >= 0);
    match sort {
        Sort::Revenue => rows.sort_by(|a, b| {
            (b.1.net_cents, b.1.net_units, &a.0).cmp(&(a.1.net_cents, a.1.net_units, &b.0))
        }),
        Sort::Units => rows.sort_by(|a, b| {
            (b.1.net_units, b.1.net_cents, &a.0).cmp(&(a.1.net_units, a.1.net_cents, &b.0))
        }),
    }
    rows.iter().map(|(k, f)| row(k, f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(period: Option<&str>, from: Option<&str>, to: Option<&str>, tz: &str) -> PeriodQuery {
        PeriodQuery {
            period: period.map(Into::into),
            from: from.map(Into::into),
            to: to.map(Into::into),
            tz: Some(tz.into()),
        }
    }

    // 2026-03-10T12:00:00Z
    const NOW: i64 = 1_773_144_000_000;

    #[test]
    fn periods_resolve_in_the_callers_zone() {
        let p =
            Period::resolve(&q(Some("7d"), None, None, "Asia/Kolkata"), "7d", "UTC", NOW).unwrap();
        assert_eq!(p.first_day.to_string(), "2026-03-04");
        assert_eq!(p.last_day.to_string(), "2026-03-10");
        // Midnight in Kolkata is 18:30 UTC the day before.
        assert_eq!(p.current.from % 86_400_000, 66_600_000);
        assert_eq!(p.previous.to, p.current.from);
        assert_eq!(p.buckets(Granularity::Day).unwrap().len(), 7);
        let p = Period::resolve(&q(Some("12m"), None, None, "UTC"), "7d", "UTC", NOW).unwrap();
        assert_eq!(p.first_day.to_string(), "2025-04-01");
        let months = p.buckets(Granularity::Month).unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[11].0, "2026-03");
        let p = Period::resolve(&q(Some("today"), None, None, "UTC"), "7d", "UTC", NOW).unwrap();
        assert_eq!(p.buckets(Granularity::Hour).unwrap().len(), 24);
    }

    #[test]
    fn daylight_saving_days_have_23_and_25_hours() {
        let p = Period::resolve(
            &q(
                None,
                Some("2026-03-08"),
                Some("2026-03-08"),
                "America/New_York",
            ),
            "7d",
            "UTC",
            NOW,
        )
        .unwrap();
        assert_eq!(p.buckets(Granularity::Hour).unwrap().len(), 23);
        let p = Period::resolve(
            &q(
                None,
                Some("2026-11-01"),
                Some("2026-11-01"),
                "America/New_York",
            ),
            "7d",
            "UTC",
            NOW,
        )
        .unwrap();
        assert_eq!(p.buckets(Granularity::Hour).unwrap().len(), 25);
    }

    /// The pattern the document publishes and the check agree, on the edges.
    #[test]
    fn date_pattern_matches_the_check() {
        // ^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$ spelled out: no regex engine here.
        assert_eq!(DATE_PATTERN, "^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$");
        for (s, shape) in [
            ("2026-01-31", true),
            ("1000-01-01", true),
            ("9999-99-99", true),
            ("0999-12-31", false),
            ("-000004-01-01", false),
            ("+2026-01-01", false),
            ("2026-1-31", false),
            ("20260131", false),
            ("2026-01-31 ", false),
        ] {
            assert_eq!(plain_date(s), shape, "{s:?}");
        }
    }

    #[test]
    fn bad_periods_are_refused_with_the_parameter() {
        let err = |q: PeriodQuery| Period::resolve(&q, "7d", "UTC", NOW).unwrap_err().0;
        assert_eq!(err(q(Some("5d"), None, None, "UTC")), "period");
        assert_eq!(
            err(q(None, Some("2026-02-02"), Some("2026-02-01"), "UTC")),
            "from"
        );
        assert_eq!(
            err(q(None, Some("2026-02-31"), Some("2026-03-01"), "UTC")),
            "from"
        );
        assert_eq!(
            err(q(None, Some("-000004-01-01"), Some("2026-03-01"), "UTC")),
            "from"
        );
        assert_eq!(
            err(q(None, Some("2026-01-01"), Some("0999-12-31"), "UTC")),
            "to"
        );
        assert_eq!(err(q(Some("7d"), None, None, "Mars/Base")), "tz");
        assert_eq!(err(q(Some("7d"), None, None, "Asia/Kathmandu")), "tz");
        let p = Period::resolve(
            &q(None, Some("2016-01-01"), Some("2025-12-31"), "UTC"),
            "7d",
            "UTC",
            NOW,
        )
        .unwrap();
        assert_eq!(p.buckets(Granularity::Hour).unwrap_err().0, "granularity");
        assert!(p.buckets(Granularity::Day).is_ok());
    }
}
