//! Links `tam` builds: components percent-encoded, and a ticket's page in the tenant's
//! helpdesk.

/// `text` as one path or query component: every byte but RFC 3986's unreserved characters
/// becomes `%XX`.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a ticket's page is (`[tickets] url`): an http(s) address with `{id}` where the id
/// goes, such as `https://acme.atlassian.net/browse/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLinks {
    pattern: String,
}

impl TicketLinks {
    /// Checks the pattern.
    pub fn parse(pattern: &str) -> Result<TicketLinks, String> {
        let pattern = pattern.trim();
        if !(pattern.starts_with("https://") || pattern.starts_with("http://")) || !pattern.contains("{id}") {
            return Err("must be an http(s) address with {id} where the ticket's id goes".to_owned());
        }
        Ok(TicketLinks { pattern: pattern.to_owned() })
    }

    /// The page of ticket `id`.
    pub fn url(&self, id: &str) -> String {
        self.pattern.replace("{id}", &encode_component(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_encoded_into_the_pattern_and_a_bad_pattern_is_refused() {
        let links = TicketLinks::parse("https://acme.atlassian.net/browse/{id}").unwrap();
        assert_eq!(links.url("SUP-1"), "https://acme.atlassian.net/browse/SUP-1");
        assert_eq!(links.url("a b/é"), "https://acme.atlassian.net/browse/a%20b%2F%C3%A9");
        assert!(TicketLinks::parse("https://acme.atlassian.net/browse/").is_err());
        assert!(TicketLinks::parse("javascript:alert(1)//{id}").is_err());
    }
}
