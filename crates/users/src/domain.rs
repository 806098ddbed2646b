//! Values of the users service that validate when they are built, and the rules
//! that need no I/O.

use ecap_core::error::FieldError;

/// A syntactically valid, normalised e-mail address.
///
/// Normalised as the original's express-validator `normalizeEmail()` does, so
/// accounts imported from it still match: lower-cased, and for Gmail the dots
/// and `+tag` of the local part removed (`googlemail.com` becomes `gmail.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let raw = raw.trim();
        if raw.len() > EMAIL_MAX || !email_address::EmailAddress::is_valid(raw) {
            return Err("Valid email is required");
        }
        let lower = raw.to_lowercase();
        let Some((local, domain)) = lower.rsplit_once('@') else {
            return Err("Valid email is required");
        };
        if !domain.contains('.') {
            return Err("Valid email is required");
        }
        let normalised = match domain {
            "gmail.com" | "googlemail.com" => {
                let local = local.split('+').next().unwrap_or(local).replace('.', "");
                if local.is_empty() {
                    return Err("Valid email is required");
                }
                format!("{local}@gmail.com")
            }
            _ => lower,
        };
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const PASSWORD_SYMBOLS: &str = "@$!%*?&";
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
/// [`check_password`] as a pattern for the OpenAPI document (length aside):
/// a lower-case letter, an upper-case letter, a digit and one of
/// [`PASSWORD_SYMBOLS`], starting with a letter, digit or one of those; no
/// control characters (`t`: the pattern of one allowed character).
pub fn password_pattern(t: &str) -> String {
    format!("(?={t}*[a-z])(?={t}*[A-Z])(?={t}*[0-9])(?={t}*[@$!%*?&])[A-Za-z0-9@$!%*?&]{t}*$")
}
pub const EMAIL_MAX: usize = 254;
pub const NAME_MIN: usize = 2;
pub const NAME_MAX: usize = 255;
pub const PHONE_MAX: usize = 20;
/// [`check_phone`] as a pattern: empty, or digits with `+-(). ` and a digit.
pub const PHONE_PATTERN: &str = r"^( *|[0-9 +().-]*[0-9][0-9 +().-]*)$";

/// Registration's password rule (contract §5.4), applied to every new password.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < PASSWORD_MIN {
        return Err("Password must be at least 8 characters");
    }
    if password.chars().count() > PASSWORD_MAX {
        return Err("Password must be at most 128 characters");
    }
    let has = |f: fn(char) -> bool| password.chars().any(f);
    let symbol = |c: char| PASSWORD_SYMBOLS.contains(c);
    let first_ok = password
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || symbol(c));
    if !(has(|c| c.is_ascii_lowercase())
        && has(|c| c.is_ascii_uppercase())
        && has(|c| c.is_ascii_digit())
        && has(|c| PASSWORD_SYMBOLS.contains(c))
        && first_ok)
    {
        return Err("Password must contain uppercase, lowercase, number and special character");
    }
    Ok(())
}

/// A display name: trimmed, 2 to 255 characters.
pub fn check_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    let n = name.chars().count();
    if n < NAME_MIN {
        return Err("Name must be at least 2 characters");
    }
    if n > NAME_MAX {
        return Err("Name must be at most 255 characters");
    }
    Ok(name.to_owned())
}

/// A phone number: digits with the usual separators, at most 20 characters.
/// Empty means "none".
pub fn check_phone(phone: &str) -> Result<Option<String>, &'static str> {
    let phone = phone.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let ok_chars = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone.len() > PHONE_MAX || !ok_chars || !phone.chars().any(|c| c.is_ascii_digit()) {
        return Err("Phone must be a phone number of at most 20 characters");
    }
    Ok(Some(phone.to_owned()))
}

/// Collects failing rules so one answer lists all of them.
#[derive(Debug, Default)]
pub struct Checks(pub Vec<FieldError>);

impl Checks {
    pub fn check<T>(&mut self, path: &str, result: Result<T, &'static str>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(msg) => {
                self.0.push(FieldError::body(path, msg));
                None
            }
        }
    }

    pub fn fail(&mut self, path: &str, msg: &str) {
        self.0.push(FieldError::body(path, msg));
    }

    pub fn finish(self) -> Result<(), ecap_core::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ecap_core::ApiError::validation(self.0))
        }
    }
}

/// The address fields, after trimming. Each is 1 to its column's length.
pub const ADDRESS_FIELDS: [(&str, &str, usize); 7] = [
    ("label", "Address label is required", 100),
    ("street", "Street address is required", 1000),
    ("city", "City is required", 100),
    ("state", "State is required", 100),
    ("zipCode", "ZIP code is required", 20),
    ("phone", "Phone number is required", 20),
    ("country", "Country is required", 100),
];

/// A non-empty trimmed text of at most `max` characters.
pub fn check_text(value: &str, missing: &'static str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(missing.to_owned());
    }
    if v.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_normalise_like_the_original() {
        assert_eq!(
            Email::parse(" Jane.Doe+shop@GoogleMail.com")
                .unwrap()
                .as_str(),
            "janedoe@gmail.com"
        );
        assert_eq!(
            Email::parse("Bob@Example.COM").unwrap().as_str(),
            "bob@example.com"
        );
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("a@localhost").is_err());
    }

    #[test]
    fn password_rule_matches_the_contract() {
        assert!(check_password("Secret1!").is_ok());
        assert_eq!(
            check_password("Sh0rt!"),
            Err("Password must be at least 8 characters")
        );
        assert!(check_password("alllowercase1!").is_err());
        assert!(check_password("NoDigits!!").is_err());
        assert!(check_password("NoSymbol123").is_err());
        // The first character must be a letter, digit or one of the symbols.
        assert!(check_password("#Secret1!").is_err());
        assert!(check_password(&format!("Aa1!{}", "x".repeat(130))).is_err());
    }

    #[test]
    fn names_and_phones() {
        assert_eq!(check_name("  Al ").unwrap(), "Al");
        assert!(check_name(" A ").is_err());
        assert_eq!(check_phone("").unwrap(), None);
        assert_eq!(
            check_phone("+91 98765-43210").unwrap().as_deref(),
            Some("+91 98765-43210")
        );
        assert!(check_phone("call me").is_err());
    }
}
