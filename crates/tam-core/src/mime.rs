//! A [`CustomerDraft`] as an RFC 5322 message: `multipart/alternative` with a text and an HTML
//! part, both UTF-8 in base64. Written by hand because it is small and every byte matters:
//! header values come only from validated types, so no input can add a header or a recipient.

use crate::Timestamp;
use crate::comms::CustomerDraft;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 body text in lines of 76 characters (RFC 2045), of the text with CRLF line ends
/// (the canonical form of `text/*`).
fn base64_body(text: &str) -> String {
    let canonical = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let encoded = base64(canonical.as_bytes());
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// A header value: as is when it is printable ASCII, else RFC 2047 encoded words, folded so no
/// line exceeds 78 characters.
fn header_text(name: &str, value: &str) -> String {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !value.contains("=?");
    if plain && name.len() + 2 + value.len() <= 78 {
        return format!("{name}: {value}\r\n");
    }
    // Encoded words of at most 42 input bytes each (56 base64 chars + 12 of framing), cut on
    // character boundaries.
    let mut words = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        if current.len() + c.len_utf8() > 42 {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    let encoded: Vec<String> = words.iter().map(|w| format!("=?UTF-8?B?{}?=", base64(w.as_bytes()))).collect();
    format!("{name}: {}\r\n", encoded.join("\r\n "))
}

/// `"Name" <address>`, with the name quoted or encoded.
fn mailbox(name: &str, address: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() {
        return address.to_owned();
    }
    if clean.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let quoted = clean.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{quoted}\" <{address}>")
    } else {
        format!("=?UTF-8?B?{}?= <{address}>", base64(clean.as_bytes()))
    }
}

/// Renders the draft as a complete message with CRLF line ends.
pub fn render(draft: &CustomerDraft, date: Timestamp) -> String {
    let boundary = format!("=_tam_{}", draft.digest());
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", mailbox(draft.from_name(), draft.from().as_str())));
    // A draft keeps its Bcc: the rep sees it, and the mail client drops it when sending.
    for (name, list) in [("To", draft.to()), ("Cc", draft.cc()), ("Bcc", draft.bcc())] {
        if !list.is_empty() {
            let addresses: Vec<&str> = list.iter().map(|e| e.as_str()).collect();
            m.push_str(&format!("{name}: {}\r\n", addresses.join(",\r\n ")));
        }
    }
    m.push_str(&header_text("Subject", draft.subject().as_str()));
    m.push_str(&format!("Date: {}\r\n", date.strftime("%a, %d %b %Y %H:%M:%S +0000")));
    m.push_str(&format!("Message-ID: {}\r\n", draft.message_id()));
    if let Some(earlier) = draft.in_reply_to() {
        m.push_str(&format!("In-Reply-To: {earlier}\r\nReferences: {earlier}\r\n"));
    }
    m.push_str(&format!("X-TAM-Kind: {}\r\n", draft.kind().as_str()));
    m.push_str(&header_text("X-TAM-Account", draft.account().as_str()));
    m.push_str(&header_text("X-TAM-Generator", draft.generator()));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!("Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n"));
    m.push_str("\r\n");
    for (kind, body) in [("plain", draft.text()), ("html", draft.html())] {
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str(&format!("Content-Type: text/{kind}; charset=utf-8\r\n"));
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        m.push_str(&base64_body(body));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

/// The Message-ID of a rep alert: derived from its effect, so a retry can find the first send.
pub fn alert_message_id(alert: &crate::comms::RepAlert) -> String {
    let digest = crate::outbox::IdemKey::from_stored(format!("{}/{}", alert.tenant, alert.key)).digest();
    format!("<{digest}@tam.local>")
}

/// A rep alert as a plain-text message from `from` to the rep (and only the rep).
pub fn render_alert(alert: &crate::comms::RepAlert, from: &crate::Email, date: Timestamp) -> String {
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\n", mailbox("tam", from.as_str())));
    m.push_str(&format!("To: {}\r\n", alert.rep.as_str()));
    m.push_str(&header_text("Subject", alert.subject.as_str()));
    m.push_str(&format!("Date: {}\r\n", date.strftime("%a, %d %b %Y %H:%M:%S +0000")));
    m.push_str(&format!("Message-ID: {}\r\n", alert_message_id(alert)));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&base64_body(&alert.text));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("foobar", "Zm9vYmFy")];
        for (input, want) in cases {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn non_ascii_headers_become_encoded_words_and_stay_short() {
        let h = header_text("Subject", &"Chloé's déploiement échoue ".repeat(4));
        assert!(h.starts_with("Subject: =?UTF-8?B?"));
        assert!(h.lines().all(|l| l.len() <= 78), "{h}");
        assert_eq!(header_text("Subject", "Plain"), "Subject: Plain\r\n");
        assert_eq!(mailbox("Ana \"A\" Ruiz", "ana@v.example"), "\"Ana \\\"A\\\" Ruiz\" <ana@v.example>");
    }
}
