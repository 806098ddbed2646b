//! Catalog types and rules, no I/O: product ids, input validation, money,
//! search tokens.

use ecap_core::error::FieldError;
use serde_json::{Map, Value};

/// Lines one order may hold, and units per line.
pub const MAX_ORDER_LINES: usize = 100;
pub const MAX_LINE_QUANTITY: i64 = 10_000;
/// Highest accepted price: ten million in the shop's currency.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_IMAGES: usize = 10;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_SKU_CHARS: usize = 100;
pub const MAX_CATEGORY_CHARS: usize = 64;
/// [`parse_category_name`] as a pattern (Python's and Rust's `\w` agree on
/// letters and digits): letters, digits, spaces, `-` or `_`, at most
/// [`MAX_CATEGORY_CHARS`] between the first and last that are not blank
/// (around them, spaces only: other blanks are control characters).
pub const CATEGORY_PATTERN: &str = r"^ *[\w-](?:[\w -]{0,62}[\w-])? *$";
/// What a SKU may be: empty (clears it) or letters, digits, `.`, `_`, `-`.
pub const SKU_PATTERN: &str = r"^ *[A-Za-z0-9._-]* *$";
/// An image link: http(s), no blanks or control characters.
pub const IMAGE_URL_PATTERN: &str = r"^ *https?://[^\s\u0000-\u001F\u007F-\u009F]+ *$";

/// Whether a product is sold and listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductStatus {
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A new product id: 24 lowercase hex digits like the original's Mongo ObjectIds
/// (4 bytes of seconds, then 8 random bytes), so ids sort roughly by creation.
pub fn new_product_id() -> String {
    let secs = u32::try_from(ecap_core::clock::now_ms() / 1000).unwrap_or(u32::MAX);
    format!("{secs:08x}{:016x}", rand::random::<u64>())
}

pub use ecap_core::ports::parse_product_id;

/// InnoDB's default full-text stopwords: MySQL/MariaDB do not index them, so
/// requiring one would match nothing. Dropped on every database, so a query
/// finds the same products everywhere.
const STOPWORDS: [&str; 36] = [
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "who", "will", "with", "und", "www", "and",
];

/// Words of a search query, lower-cased, letters and digits only (so they are
/// safe inside every database's full-text syntax), stopwords dropped; at most eight.
pub fn search_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase().chars().take(40).collect::<String>())
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .take(8)
        .collect()
}

/// Average rating × 100, rounded half up.
pub fn rating_avg_x100(sum: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    (sum * 200 + count) / (2 * count)
}

/// Cents as the contract's decimal number.
pub fn money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// A price from JSON: a number or numeric string, ≥ 0, at most two decimals.
pub fn parse_price(v: &Value) -> Result<i64, &'static str> {
    const MSG: &str = "Price must be a positive number";
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err(MSG),
    };
    parse_decimal_cents(&text).ok_or(MSG).and_then(|c| match c {
        Some(c) if c <= MAX_PRICE_CENTS => Ok(c),
        Some(_) => Err("Price is too large"),
        None => Err("Price can have at most 2 decimal places"),
    })
}

/// `"12.5"` → `Some(Some(1250))`; more than two decimals → `Some(None)`; not a
/// non-negative decimal → `None`. Exponents are accepted (`1e2`).
fn parse_decimal_cents(text: &str) -> Option<Option<i64>> {
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() || f < 0.0 || text.starts_with('-') {
        return None;
    }
    if text.contains(['e', 'E']) {
        let cents = (f * 100.0).round();
        return Some(((cents / 100.0 - f).abs() < 1e-9 && cents < 9e15).then_some(cents as i64));
    }
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return Some(None);
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_cents: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac_cents)),
    )
}

pub use ecap_core::extract::json_int as parse_int;

/// A category name: lower-case letters, digits, spaces, `-` or `_`, 1–64.
pub fn parse_category_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_CATEGORY_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'));
    ok.then_some(name)
}

/// A validated product body, and what an update changes: `None` leaves a
/// field alone (`sku: Some(None)` clears it).
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_cents: Option<i64>,
    pub stock: Option<i64>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub attributes: Option<Value>,
    pub sku: Option<Option<String>>,
    pub status: Option<ProductStatus>,
    /// Replaces the product's linked (not uploaded) images.
    pub images: Option<Vec<String>>,
}

impl ProductChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price_cents.is_none()
            && self.stock.is_none()
            && self.category.is_none()
            && self.tags.is_none()
            && self.attributes.is_none()
            && self.sku.is_none()
            && self.status.is_none()
            && self.images.is_none()
    }
}

/// A boolean from JSON, or the text `true`/`false` a form sends.
fn form_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the fields ecap knows from a product body; anything else is ignored
/// (never stored). `creating`: name, description, price and category are required.
pub fn product_input(
    body: &Map<String, Value>,
    creating: bool,
) -> Result<ProductChanges, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = ProductChanges::default();
    let present = |k: &str| body.get(k).filter(|v| !v.is_null());

    let text = |key: &str, max: usize, msg: &str, errors: &mut Vec<FieldError>| match present(key) {
        None if creating => {
            errors.push(FieldError::body(key, msg));
            None
        }
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.trim().chars().count() <= max => {
            Some(s.trim().to_owned())
        }
        Some(_) => {
            errors.push(FieldError::body(key, msg));
            None
        }
    };
    out.name = text(
        "name",
        MAX_NAME_CHARS,
        "Product name is required (max 200 characters)",
        &mut errors,
    );
    out.description = text(
        "description",
        MAX_DESCRIPTION_CHARS,
        "Description is required (max 2000 characters)",
        &mut errors,
    );
    match present("price") {
        None if creating => {
            errors.push(FieldError::body("price", "Price must be a positive number"))
        }
        None => {}
        Some(v) => match parse_price(v) {
            Ok(c) => out.price_cents = Some(c),
            Err(msg) => errors.push(FieldError::body("price", msg)),
        },
    }
    match present("inventory") {
        None => {}
        Some(v) => match parse_int(v) {
            Some(n) if (0..=MAX_STOCK).contains(&n) => out.stock = Some(n),
            _ => errors.push(FieldError::body(
                "inventory",
                "Inventory must be a non-negative integer",
            )),
        },
    }
    match present("category") {
        None if creating => errors.push(FieldError::body("category", "Invalid category")),
        None => {}
        Some(Value::String(s)) => match parse_category_name(s) {
            Some(c) => out.category = Some(c),
            None => errors.push(FieldError::body("category", "Invalid category")),
        },
        Some(_) => errors.push(FieldError::body("category", "Invalid category")),
    }
    if let Some(v) = present("tags") {
        let tags = v.as_array().and_then(|items| {
            (items.len() <= MAX_TAGS)
                .then(|| {
                    items
                        .iter()
                        .map(|t| {
                            t.as_str()
                                .map(str::trim)
                                .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS)
                                .map(str::to_owned)
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .flatten()
        });
        match tags {
            Some(mut t) => {
                t.dedup();
                out.tags = Some(t);
            }
            None => errors.push(FieldError::body(
                "tags",
                "Tags must be a list of up to 20 words (max 50 characters each)",
            )),
        }
    }
    if let Some(v) = present("attributes") {
        match v {
            Value::Object(_) if v.to_string().len() <= MAX_ATTRIBUTES_BYTES => {
                out.attributes = Some(v.clone());
            }
            Value::Object(_) => errors.push(FieldError::body(
                "attributes",
                "Attributes must be at most 16 KiB of JSON",
            )),
            _ => errors.push(FieldError::body(
                "attributes",
                "Attributes must be a JSON object",
            )),
        }
    }
    if let Some(v) = body.get("sku") {
        match v {
            Value::Null => out.sku = Some(None),
            Value::String(s) if s.trim().is_empty() => out.sku = Some(None),
            Value::String(s)
                if s.trim().len() <= MAX_SKU_CHARS
                    && s.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                out.sku = Some(Some(s.trim().to_owned()));
            }
            _ => errors.push(FieldError::body(
                "sku",
                "SKU must be 1–100 letters, digits, '.', '_' or '-'",
            )),
        }
    }
    match (present("status"), present("isActive")) {
        (Some(Value::String(s)), _) if ProductStatus::parse(s).is_some() => {
            out.status = ProductStatus::parse(s);
        }
        (Some(_), _) => errors.push(FieldError::body(
            "status",
            "Status must be active or archived",
        )),
        (None, Some(v)) if form_bool(v).is_some() => {
            out.status = Some(if form_bool(v) == Some(true) {
                ProductStatus::Active
            } else {
                ProductStatus::Archived
            });
        }
        (None, Some(_)) => errors.push(FieldError::body("isActive", "isActive must be a boolean")),
        (None, None) => {}
    }
    if let Some(v) = present("images") {
        let urls = v.as_array().and_then(|items| {
            (items.len() <= MAX_IMAGES)
                .then(|| {
                    items
                        .iter()
                        .map(|u| {
                            u.as_str()
                                .map(str::trim)
                                .filter(|u| is_http_url(u))
                                .map(str::to_owned)
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .flatten()
        });
        match urls {
            Some(u) => out.images = Some(u),
            None => errors.push(FieldError::body(
                "images",
                "Images must be a list of up to 10 http(s) URLs (upload files with POST /api/products/:id/images)",
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `http(s)://` and at least one character more, at most 2,048 characters,
/// no blank or control character (the document's pattern and `maxLength`).
fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty())
        && u.chars().count() <= 2048
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_keep_two_decimals_exactly() {
        assert_eq!(parse_price(&json!(19.99)), Ok(1999));
        assert_eq!(parse_price(&json!("0.1")), Ok(10));
        assert_eq!(parse_price(&json!(0)), Ok(0));
        assert_eq!(parse_price(&json!(12.50)), Ok(1250));
        assert_eq!(parse_price(&json!(1e2)), Ok(10000));
        assert!(parse_price(&json!(1.999)).is_err());
        assert!(parse_price(&json!(-1)).is_err());
        assert!(parse_price(&json!("abc")).is_err());
        assert!(parse_price(&json!(true)).is_err());
        assert!(parse_price(&json!(1e12)).is_err());
    }

    #[test]
    fn ids_look_like_object_ids() {
        let id = new_product_id();
        assert_eq!(parse_product_id(&id), Some(id.clone()));
        assert_eq!(id.len(), 24);
        assert!(parse_product_id("xyz").is_none());
        assert!(parse_product_id("../../etc/passwd00000000").is_none());
    }

    #[test]
    fn search_tokens_are_safe() {
        assert_eq!(
            search_tokens(r#"Blue "shirt" OR 1=1; -- *"#),
            vec!["blue", "shirt", "1", "1"]
        );
        assert!(search_tokens("  ***  ").is_empty());
        assert_eq!(
            search_tokens("speaker with deep bass"),
            ["speaker", "deep", "bass"]
        );
    }

    #[test]
    fn averages_round_half_up() {
        assert_eq!(rating_avg_x100(9, 2), 450);
        assert_eq!(rating_avg_x100(10, 3), 333);
        assert_eq!(rating_avg_x100(0, 0), 0);
        assert_eq!(rating_avg_x100(5, 3), 167);
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_ones_named() {
        let body = json!({"name": "A", "description": "B", "price": 1, "category": "books",
            "rating": {"average": 5}, "reviews": [1], "isActive": true, "_id": "x"});
        let p = product_input(body.as_object().unwrap(), true).unwrap();
        assert_eq!(p.name.as_deref(), Some("A"));
        let body = json!({"name": "", "price": 1.234, "inventory": -1, "attributes": [1]});
        let errs = product_input(body.as_object().unwrap(), true).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "name",
                "description",
                "price",
                "inventory",
                "category",
                "attributes"
            ]
        );
    }
}
