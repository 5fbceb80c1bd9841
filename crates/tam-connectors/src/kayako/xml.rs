//! Just enough XML for the Kayako Classic API: elements, attributes, text, CDATA, entities,
//! comments and the prolog. Kayako answers flat documents (`<tickets><ticket>…`), sends
//! values as CDATA or plain text, may put PHP notices before `<?xml`, and passes HTML entities
//! (`&nbsp;`) through unescaped. An XML crate (quick-xml is not otherwise in the build) would
//! refuse the last two and need this module's leniency around it anyway; the reader instead
//! carries a property test that no input, however broken, makes it panic.

/// One element: its name, attributes, children and text (CDATA included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// The text directly inside, entities decoded, trimmed.
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child named `name`, if it has any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str()).filter(|t| !t.is_empty())
    }

    /// An attribute's value.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML at byte {at}: {reason}")]
pub struct XmlError {
    /// Byte offset in the document.
    pub at: usize,
    /// What was expected.
    pub reason: String,
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

fn decode(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn fail<T>(&self, reason: &str) -> Result<T, XmlError> {
        Err(XmlError { at: self.at, reason: reason.to_owned() })
    }

    fn skip_until(&mut self, end: &str) -> Result<(), XmlError> {
        match self.rest().find(end) {
            Some(i) => {
                self.at += i + end.len();
                Ok(())
            }
            None => self.fail(&format!("no closing {end}")),
        }
    }

    /// Skips whitespace, comments, processing instructions and doctypes.
    fn skip_misc(&mut self) -> Result<(), XmlError> {
        loop {
            let trimmed = self.rest().trim_start();
            self.at = self.text.len() - trimmed.len();
            if trimmed.starts_with("<!--") {
                self.skip_until("-->")?;
            } else if trimmed.starts_with("<?") {
                self.skip_until("?>")?;
            } else if trimmed.starts_with("<!DOCTYPE") {
                self.skip_until(">")?;
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, XmlError> {
        let len = self.rest().find(|c: char| c.is_whitespace() || matches!(c, '>' | '/' | '=')).unwrap_or(0);
        if len == 0 {
            return self.fail("expected a name");
        }
        let name = self.rest()[..len].to_owned();
        self.at += len;
        Ok(name)
    }

    fn element(&mut self, depth: usize) -> Result<Element, XmlError> {
        if depth > 64 {
            return self.fail("nested too deeply");
        }
        if !self.rest().starts_with('<') {
            return self.fail("expected an element");
        }
        self.at += 1;
        let mut element = Element { name: self.name()?, ..Element::default() };
        loop {
            self.at = self.text.len() - self.rest().trim_start().len();
            if self.rest().starts_with("/>") {
                self.at += 2;
                return Ok(element);
            }
            if self.rest().starts_with('>') {
                self.at += 1;
                break;
            }
            let key = self.name()?;
            self.at = self.text.len() - self.rest().trim_start().len();
            if !self.rest().starts_with('=') {
                return self.fail("expected = after an attribute name");
            }
            self.at += 1;
            self.at = self.text.len() - self.rest().trim_start().len();
            let Some(quote) = self.rest().chars().next().filter(|c| matches!(c, '"' | '\'')) else {
                return self.fail("expected a quoted attribute value");
            };
            self.at += 1;
            let Some(end) = self.rest().find(quote) else { return self.fail("unclosed attribute value") };
            element.attributes.push((key, decode(&self.rest()[..end])));
            self.at += end + 1;
        }
        let mut text = String::new();
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return self.fail(&format!("<{}> is not closed", element.name));
            }
            if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
                let Some(end) = cdata.find("]]>") else { return self.fail("unclosed CDATA") };
                text.push_str(&cdata[..end]);
                self.at += "<![CDATA[".len() + end + 3;
            } else if rest.starts_with("<!--") {
                self.skip_until("-->")?;
            } else if let Some(closing) = rest.strip_prefix("</") {
                let Some(len) = closing.find('>') else { return self.fail("an end tag is not closed") };
                if closing[..len].trim() != element.name {
                    return self.fail(&format!("</{}> closes <{}>", closing[..len].trim(), element.name));
                }
                self.at += 2 + len + 1;
                element.text = text.trim().to_owned();
                return Ok(element);
            } else if rest.starts_with('<') {
                element.children.push(self.element(depth + 1)?);
            } else {
                let len = rest.find('<').unwrap_or(rest.len());
                text.push_str(&decode(&rest[..len]));
                self.at += len;
            }
        }
    }
}

/// The root element of `document`; anything before `<?xml` or the first element (a PHP notice)
/// is ignored.
pub fn parse(document: &str) -> Result<Element, XmlError> {
    let start = document.find("<?xml").or_else(|| document.find('<')).unwrap_or(0);
    let mut reader = Reader { text: &document[start..], at: 0 };
    reader.skip_misc()?;
    let root = reader.element(0)?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_plain_text_attributes_and_empty_elements() {
        let doc = "Notice: undefined index\n<?xml version=\"1.0\"?>\n<!-- c -->\n<tickets>\n<ticket id=\"49\" flagtype='0'>\
                   <subject><![CDATA[Close <this> ticket]]></subject><fullname>Tom &amp; Jerry &#233;</fullname>\
                   <userorganization /><posts><post><id>1</id></post></posts></ticket></tickets>";
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "tickets");
        let t = &root.children[0];
        assert_eq!((t.attribute("id"), t.attribute("flagtype")), (Some("49"), Some("0")));
        assert_eq!(t.text_of("subject"), Some("Close <this> ticket"));
        assert_eq!(t.text_of("fullname"), Some("Tom & Jerry é"));
        assert_eq!(t.text_of("userorganization"), None);
        assert_eq!(t.child("posts").unwrap().children[0].text_of("id"), Some("1"));
    }

    proptest::proptest! {
        #[test]
        fn no_document_makes_it_panic(doc in "[<>/a-c =\"'&#;!\\[\\]?x0-9-]{0,80}") {
            let _ = parse(&doc);
        }

        #[test]
        fn a_tree_it_reads_keeps_every_text_it_was_given(texts in proptest::collection::vec("[a-z &<>'\"]{0,12}", 0..6)) {
            let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            let body: String = texts.iter().map(|t| format!("<v k=\"{}\">{}</v>", escape(t).replace('"', "&quot;"), escape(t))).collect();
            let root = parse(&format!("<r>{body}</r>")).unwrap();
            proptest::prop_assert_eq!(root.children.len(), texts.len());
            for (child, text) in root.children.iter().zip(&texts) {
                proptest::prop_assert_eq!(&child.text, text.trim());
                proptest::prop_assert_eq!(child.attribute("k"), Some(text.as_str()));
            }
        }
    }

    #[test]
    fn broken_documents_say_where() {
        assert!(parse("<a><b></a>").unwrap_err().reason.contains("</a> closes <b>"));
        assert!(parse("<a>").unwrap_err().reason.contains("<a> is not closed"));
        assert!(parse("<a x=1/>").unwrap_err().reason.contains("quoted"));
        assert!(parse("<tickets><ticket><id>1</id></ticket").unwrap_err().reason.contains("end tag"), "cut off");
        for cut in 0..60 {
            // Any prefix of a document is an error or a tree, never a panic.
            let doc = "<a k='v'><b><![CDATA[x]]></b><c>&amp;&#233;</c><d/></a>";
            let _ = parse(&doc[..cut.min(doc.len())]);
        }
    }
}
