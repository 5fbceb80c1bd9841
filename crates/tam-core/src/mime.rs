//! A [`CustomerDraft`] as an RFC 5322 message: `multipart/alternative` with a text and an HTML
//! part, both UTF-8 in base64. A draft with images wraps its HTML part and the PNGs in
//! `multipart/related` (RFC 2387), which is how Gmail and Outlook find `cid:` images. Written by hand because it is small and every byte matters:
//! header values come only from validated types, so no input can add a header or a recipient.

use crate::Timestamp;
use crate::comms::CustomerDraft;

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

/// Base64url without padding, as JWTs, Gmail's `raw` and URL tokens want it.
pub fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Base64 body text in lines of 76 characters (RFC 2045), of the text with CRLF line ends
/// (the canonical form of `text/*`).
fn base64_body(text: &str) -> String {
    let canonical = text.replace("\r\n", "\n").replace('\n', "\r\n");
    base64_lines(canonical.as_bytes())
}

/// Base64 in lines of 76 characters, each ended by CRLF.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64(bytes);
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
    m.push_str(&format!("--{boundary}\r\n"));
    text_part(&mut m, "plain", draft.text());
    m.push_str(&format!("--{boundary}\r\n"));
    let images: Vec<_> = draft.images().collect();
    if images.is_empty() {
        text_part(&mut m, "html", draft.html());
    } else {
        // Neither boundary may start the other: a parser matches a delimiter line by prefix.
        let related = format!("=_tam_r_{}", draft.digest());
        m.push_str(&format!(
            "Content-Type: multipart/related;\r\n boundary=\"{related}\";\r\n type=\"text/html\"\r\n\r\n"
        ));
        m.push_str(&format!("--{related}\r\n"));
        text_part(&mut m, "html", draft.html());
        for (content_id, image) in images {
            m.push_str(&format!("--{related}\r\n"));
            m.push_str("Content-Type: image/png\r\n");
            m.push_str("Content-Transfer-Encoding: base64\r\n");
            m.push_str(&format!("Content-ID: <{content_id}>\r\n"));
            m.push_str(&format!("Content-Disposition: inline; filename=\"{}.png\"\r\n\r\n", image.name()));
            m.push_str(&base64_lines(image.bytes()));
        }
        m.push_str(&format!("--{related}--\r\n"));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

fn text_part(m: &mut String, kind: &str, body: &str) {
    m.push_str(&format!("Content-Type: text/{kind}; charset=utf-8\r\n"));
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    m.push_str(&base64_body(body));
}

/// The plain-text part of a message [`render`] wrote, read back (for a reader of the draft
/// that is not a mail client), with `\n` line ends; `None` when it has none.
pub fn text_of(message: &str) -> Option<String> {
    let at = message.find("Content-Type: text/plain")?;
    let part = &message[at..];
    let body_start = part.find("\r\n\r\n")? + 4;
    let body: String = part[body_start..]
        .lines()
        .take_while(|l| !l.starts_with("--") && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).ok()?;
    Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::comms::{Brief, CommKind, InlineImage, Written};
    use crate::outbox::IdemKey;
    use crate::{AccountId, Email, HealthStatus, TenantId, Trend};

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n not a real image, but enough bytes to need two base64 lines of text ....";

    fn draft(images: Vec<InlineImage>) -> CustomerDraft {
        let brief = Brief {
            account_name: "Northwind".into(),
            contacts: vec![Email::parse("email", "ops@nw.example").unwrap()],
            rep_name: "Ana".into(),
            score: 50,
            status: HealthStatus::Amber,
            trend: Trend::Declining,
            ..Brief::new(
                CommKind::CustomerSuccessReview,
                TenantId::parse("tenant", "acme").unwrap(),
                AccountId::parse("id", "nw").unwrap(),
                Email::parse("email", "ana@v.example").unwrap(),
                "2026-03-29T07:00:00Z".parse().unwrap(),
            )
        };
        let written = Written {
            subject: "Review".into(),
            text: "Scores: 90, 50\n".into(),
            html: "<p>Scores</p><img src=\"cid:health-chart\" alt=\"chart\" width=\"560\" height=\"200\">".into(),
            generator: "template".into(),
            confidence: "medium".into(),
            note: None,
            calls: vec![],
            images,
        };
        CustomerDraft::new(&brief, written, IdemKey::from_stored("review:nw:2026-03-29".to_owned()))
    }

    fn unbase64(text: &str) -> Vec<u8> {
        let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, clean).unwrap()
    }

    /// The parts between `--boundary` lines, up to the closing `--boundary--`; each as headers
    /// and body.
    fn parts<'a>(body: &'a str, boundary: &str) -> Vec<(&'a str, &'a str)> {
        let delimiter = format!("--{boundary}\r\n");
        let (inside, after) = body.split_once(&format!("--{boundary}--\r\n")).unwrap();
        assert!(after.is_empty() || !after.contains(&delimiter), "nothing follows the close");
        inside.split(&delimiter).skip(1).map(|p| p.split_once("\r\n\r\n").unwrap()).collect()
    }

    fn boundary_of(headers: &str) -> String {
        let start = headers.find("boundary=\"").unwrap() + "boundary=\"".len();
        headers[start..].split('"').next().unwrap().to_owned()
    }

    #[test]
    fn a_draft_with_an_image_nests_html_and_png_in_multipart_related() {
        let d = draft(vec![InlineImage::png("health-chart", PNG.to_vec()).unwrap()]);
        let m = render(&d, "2026-03-29T07:00:00Z".parse().unwrap());
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Type: multipart/alternative;"), "{head}");
        let outer = parts(body, &boundary_of(head));
        assert_eq!(outer.len(), 2);
        assert!(outer[0].0.starts_with("Content-Type: text/plain; charset=utf-8"), "{}", outer[0].0);
        assert_eq!(unbase64(outer[0].1), b"Scores: 90, 50\r\n");
        let (related_head, related_body) = outer[1];
        assert!(related_head.starts_with("Content-Type: multipart/related;"), "{related_head}");
        assert!(related_head.contains("type=\"text/html\""), "{related_head}");
        let inner_boundary = boundary_of(related_head);
        assert!(!inner_boundary.starts_with(&boundary_of(head)) && !boundary_of(head).starts_with(&inner_boundary));
        let inner = parts(related_body, &inner_boundary);
        assert_eq!(inner.len(), 2);
        assert!(inner[0].0.starts_with("Content-Type: text/html; charset=utf-8"), "{}", inner[0].0);
        let html = String::from_utf8(unbase64(inner[0].1)).unwrap();

        let (png_head, png_body) = inner[1];
        assert!(png_head.starts_with("Content-Type: image/png\r\n"), "{png_head}");
        assert!(png_head.contains("Content-Disposition: inline; filename=\"health-chart.png\""), "{png_head}");
        let content_id = png_head.split("Content-ID: <").nth(1).unwrap().split('>').next().unwrap();
        assert_eq!(content_id, format!("health-chart.{}@tam.local", d.digest()));
        assert!(html.contains(&format!("<img src=\"cid:{content_id}\" alt=")), "{html}");
        assert!(!html.contains("cid:health-chart\""), "the local name is qualified: {html}");
        assert!(png_body.lines().all(|l| l.len() <= 76) && png_body.lines().count() == 2, "{png_body}");
        assert_eq!(unbase64(png_body), PNG);
        assert!(unbase64(png_body).starts_with(b"\x89PNG\r\n\x1a\n"));
        // A retry renders the same bytes.
        assert_eq!(m, render(&d, "2026-03-29T07:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_draft_without_images_keeps_two_flat_parts() {
        let m = render(&draft(vec![]), "2026-03-29T07:00:00Z".parse().unwrap());
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        let outer = parts(body, &boundary_of(head));
        let types: Vec<&str> = outer.iter().map(|(h, _)| h.lines().next().unwrap()).collect();
        assert_eq!(types, ["Content-Type: text/plain; charset=utf-8", "Content-Type: text/html; charset=utf-8"]);
        assert!(!m.contains("multipart/related") && !m.contains("Content-ID"));
    }

    #[test]
    fn image_names_are_header_safe_and_bytes_are_png() {
        assert!(InlineImage::png("health-chart", PNG.to_vec()).is_ok());
        for bad in ["", "Chart", "a b", "x\r\nBcc: e@evil.example", "a.png", &"a".repeat(33)] {
            assert!(InlineImage::png(bad, PNG.to_vec()).is_err(), "{bad:?}");
        }
        assert!(InlineImage::png("chart", b"GIF89a".to_vec()).is_err());
        let json = r#"{"name":"x\r\ny","png":[137,80,78,71,13,10,26,10]}"#;
        assert!(serde_json::from_str::<InlineImage>(json).is_err(), "deserialising checks too");
        let old =
            r#"{"subject":"s","text":"t","html":"h","generator":"template","confidence":"low","note":null,"calls":[]}"#;
        assert!(serde_json::from_str::<Written>(old).unwrap().images.is_empty(), "old payloads read");
    }

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

    #[test]
    fn the_text_part_reads_back_with_and_without_images() {
        let at = "2026-03-29T07:00:00Z".parse().unwrap();
        for images in [vec![], vec![InlineImage::png("health-chart", PNG.to_vec()).unwrap()]] {
            let message = render(&draft(images), at);
            assert_eq!(text_of(&message).as_deref(), Some("Scores: 90, 50\n"), "{message}");
        }
        assert_eq!(text_of("Subject: no parts\r\n\r\nhello"), None);
    }
}
