use std::fmt;

use crate::field::{FieldError, quote};

/// Longest identifier accepted from any source. CRM and ticket ids are short; anything longer is
/// a mistake in the input, not an id.
const MAX_ID_CHARS: usize = 128;

fn parse_id(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::missing(field));
    }
    if trimmed.chars().count() > MAX_ID_CHARS {
        return Err(FieldError::new(field, format!("{} is longer than {MAX_ID_CHARS} characters", quote(trimmed))));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(field, format!("{} contains control characters", quote(trimmed))));
    }
    Ok(trimmed.to_owned())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(into = "String", try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(raw: String) -> Result<$name, FieldError> {
                $name::parse("id", &raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl $name {
            /// Parses an id: trimmed, non-empty, at most 128 characters, no control characters.
            pub fn parse(field: &'static str, raw: &str) -> Result<$name, FieldError> {
                parse_id(field, raw).map($name)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: one customer of `tam` (a vendor with its own book of business).
    TenantId
);
id_type!(
    /// An account id, stable and taken from the CRM. Unique within a tenant.
    AccountId
);
id_type!(
    /// A ticket id from its source system. Unique within a tenant.
    TicketId
);

/// An email address that passed a structural check: one `@`, a local part, a domain.
///
/// Deliverability is the mail system's job; this only keeps obvious garbage out of
/// recipient lists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Email(String);

impl TryFrom<String> for Email {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Email, FieldError> {
        Email::parse("email", &raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl Email {
    /// The same address in lower case (still valid: addresses are ASCII), so that one person
    /// is one key however a CRM capitalised them.
    pub fn lowercased(&self) -> Email {
        Email(self.0.to_ascii_lowercase())
    }

    /// Parses an address; `field` names the input field in the error.
    pub fn parse(field: &'static str, raw: &str) -> Result<Email, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::missing(field));
        }
        let invalid = || FieldError::new(field, format!("{} is not an email address", quote(trimmed)));
        if trimmed.len() > 254 || trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = trimmed.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        // Plain ASCII addresses only (RFC 5322 dot-atoms): they go into mail headers, where a
        // comma, angle bracket or quote would change what the header says.
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
        let domain_chars = domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || !domain_ok || !local.chars().all(atext) || !domain_chars {
            return Err(invalid());
        }
        Ok(Email(trimmed.to_owned()))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_and_bounded() {
        assert_eq!(AccountId::parse("id", "  acme ").unwrap().as_str(), "acme");
        assert_eq!(AccountId::parse("id", "   ").unwrap_err(), FieldError::missing("id"));
        assert!(TicketId::parse("id", &"x".repeat(129)).is_err());
        assert!(TicketId::parse("id", &"x".repeat(128)).is_ok());
        let err = TenantId::parse("tenant_id", "a\u{7}b").unwrap_err();
        assert_eq!(err.to_string(), r#"field tenant_id: "a\u{7}b" contains control characters"#);
    }

    #[test]
    fn emails_need_a_local_part_and_a_domain() {
        for good in ["rep@vendor.example", "a.b+tag@x.co.uk", "ops@localhost"] {
            assert!(Email::parse("rep_email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "rep",
            "@vendor.example",
            "rep@",
            "a@b@c.d",
            "ops,cto@x.example",
            "a<b@x.example",
            "ü@x.example",
            "a@x_y.example",
            "a b@c.d",
            "a@.b.c",
            "a@b..c",
        ] {
            assert!(Email::parse("rep_email", bad).is_err(), "{bad}");
        }
    }
}
