//! A stateful local Gmail API with Google's OAuth token endpoint, answering in the wire format
//! recorded in `shared/reference/fixtures/gmail`. It enforces what the real one does and `tam`
//! must respect: tokens only for the scopes delegated to the client (`unauthorized_client`
//! otherwise), a bearer token on every call, the scopes each method accepts (403
//! `insufficientPermissions`: `gmail.compose` cannot list or read messages), the per-user quota
//! in units per method over a moving second (429 `userRateLimitExceeded`, no `Retry-After`),
//! valid JSON and base64 `raw`, recipients for a sent message, and Gmail's threading rule: a
//! message joins `threadId` only when its reply headers and subject agree with that thread.
//! Latency, failures and replies lost after the server acted can be injected.
//!
//! Methods: `drafts.create|list|get`, `messages.send|list|get` and `threads.get`. Reads in
//! `format=full` answer the MIME tree with decoded bodies and every format has Gmail's
//! `snippet`; `messages.list` searches with `q` terms `rfc822msgid:`, `in:sent`, `in:drafts`,
//! `to:`, `after:` and `before:` (ANDed) and filters on `labelIds`.
//!
//! Tests act as the rep in Gmail's web UI with [`FakeGmail::user_edits_draft`] (same draft id,
//! a new message), [`FakeGmail::user_sends_draft`] (the draft is gone and a new `SENT` message
//! with a Message-ID of Gmail's own takes its place) and [`FakeGmail::user_deletes_draft`].
//!
//! Each connection has its own thread and the latency is slept there, outside the lock, so
//! concurrent requests overlap as they would on the real service.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Full access to the mailbox.
pub const SCOPE_MAIL: &str = "https://mail.google.com/";
/// Drafts and sending.
pub const SCOPE_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
/// Sending only.
pub const SCOPE_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
/// Reading everything.
pub const SCOPE_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
/// Reading and changing everything but deleting.
pub const SCOPE_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
/// Labels and headers, without bodies or search.
pub const SCOPE_METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";

const ADDON_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.addons.current.action.compose";
const ADDON_MESSAGE: &[&str] = &[
    "https://www.googleapis.com/auth/gmail.addons.current.message.action",
    "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
    "https://www.googleapis.com/auth/gmail.addons.current.message.readonly",
];

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const TOKEN_LIFETIME: u64 = 3599;
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Gmail's message id (16 hex digits).
    pub id: String,
    /// The thread it belongs to; a new thread's id is its first message's id, as in Gmail.
    pub thread_id: String,
    /// The draft's id (`r-…`) when the message is a draft.
    pub draft_id: Option<String>,
    /// `DRAFT`, `SENT`, or `INBOX` and `UNREAD` for a received message.
    pub label_ids: Vec<String>,
    /// The RFC 5322 text decoded from `raw` (invalid UTF-8 replaced).
    pub raw: String,
    /// The header fields in order, unfolded, encoded words decoded.
    pub headers: Vec<(String, String)>,
    /// The `Message-ID` header, or the one Gmail gives a message without it.
    pub message_id: String,
    /// `Subject`, decoded.
    pub subject: Option<String>,
    /// `From`.
    pub from: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `Cc`.
    pub cc: Option<String>,
    /// `Bcc`.
    pub bcc: Option<String>,
    /// `In-Reply-To`.
    pub in_reply_to: Option<String>,
}

impl StoredMessage {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the fake has been asked, for assertions and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct GmailStats {
    /// Every request, token requests and refused ones included.
    pub requests: u64,
    /// Requests per route: `POST token`, `GET drafts`, `POST drafts`, `GET drafts/{id}`,
    /// `GET messages`, `GET messages/{id}`, `POST messages/send`, `GET threads/{id}`; anything
    /// else by its path.
    pub routes: BTreeMap<String, u64>,
    /// Gmail calls refused with 429 for going over a user's quota.
    pub rate_limited: u64,
    /// Gmail calls refused with 403 for a token without a scope the method accepts.
    pub insufficient_scope: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Token requests refused with `unauthorized_client`.
    pub tokens_refused: u64,
    /// The most requests being handled at once (latency included).
    pub peak_in_flight: u64,
    /// The most quota units any one user spent within one second.
    pub peak_user_units_per_second: u64,
}

#[derive(Clone)]
struct Grant {
    sub: String,
    scopes: Vec<String>,
    expires: Instant,
}

struct Stored {
    message: StoredMessage,
    internal_date: i64,
    history_id: u64,
    /// Deleted or replaced in the web UI: kept as a tombstone so indices stay valid.
    gone: bool,
}

/// One user's mailbox. Messages stay in `messages` for good, so indices stay valid; a message
/// that disappears is marked `gone` and dropped from every map, so lookups never see it.
#[derive(Default)]
struct Mailbox {
    messages: Vec<Stored>,
    by_id: HashMap<String, usize>,
    by_message_id: HashMap<String, Vec<usize>>,
    drafts: HashMap<String, usize>,
    threads: HashMap<String, Vec<usize>>,
}

#[derive(Default)]
struct Window {
    spent: VecDeque<(Instant, u64)>,
    sum: u64,
}

struct State {
    token_uri: String,
    granted: Vec<String>,
    units_per_second: u32,
    latency: Duration,
    next: u64,
    tokens: HashMap<String, Grant>,
    mailboxes: HashMap<String, Mailbox>,
    windows: HashMap<String, Window>,
    failures: VecDeque<(u16, String)>,
    token_failures: VecDeque<(u16, String)>,
    lose_any: u32,
    lose_write: u32,
    in_flight: u64,
    stats: GmailStats,
}

/// A running fake Gmail; dropping it stops accepting connections.
pub struct FakeGmail {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeGmail {
    /// A fake on a free port of 127.0.0.1 that delegates `gmail.compose` and `gmail.send`, and
    /// allows each user 250 quota units a second.
    pub fn start() -> FakeGmail {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let state = Arc::new(Mutex::new(State {
            token_uri: format!("http://{addr}/token"),
            granted: vec![SCOPE_COMPOSE.to_owned(), SCOPE_SEND.to_owned()],
            units_per_second: 250,
            latency: Duration::ZERO,
            next: 0,
            tokens: HashMap::new(),
            mailboxes: HashMap::new(),
            windows: HashMap::new(),
            failures: VecDeque::new(),
            token_failures: VecDeque::new(),
            lose_any: 0,
            lose_write: 0,
            in_flight: 0,
            stats: GmailStats::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeGmail { addr, state, stop }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// What the client's `base_url` should be: `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service account's `token_uri`: `http://127.0.0.1:<port>/token`.
    pub fn token_uri(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The scopes delegated to the client in the Admin console, replacing the earlier ones.
    /// Tokens already issued keep theirs, as Google's do until they expire.
    pub fn grant(&self, scopes: &[&str]) {
        self.state().granted = scopes.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Each user's quota in units per moving second; 0 means no limit.
    pub fn set_user_units_per_second(&self, units: u32) {
        self.state().units_per_second = units;
    }

    /// How long every request, token requests included, waits before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// The next Gmail call with a valid token is answered `status` with `body` (JSON) instead
    /// of being carried out. Token requests are not affected.
    pub fn fail_next(&self, status: u16, body: &str) {
        self.state().failures.push_back((status, body.to_owned()));
    }

    /// The next token request is answered `status` with `body` (JSON).
    pub fn fail_next_token(&self, status: u16, body: &str) {
        self.state().token_failures.push_back((status, body.to_owned()));
    }

    /// The next Gmail call that passes the token, scope and quota checks is carried out, but
    /// its answer is replaced by Google's 502 page, as when a reply is lost after the server
    /// acted.
    pub fn lose_next_reply(&self) {
        self.state().lose_any += 1;
    }

    /// Like [`FakeGmail::lose_next_reply`], for the next draft created or message sent.
    pub fn lose_reply_of_next_send(&self) {
        self.state().lose_write += 1;
    }

    /// Every token issued so far stops working (answers 401), as when they expire.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// A message arriving in `user`'s inbox, joining the thread of a message it replies to
    /// when the subjects agree.
    pub fn receive(&self, user: &str, raw: &str) -> StoredMessage {
        let mut s = self.state();
        let user = user.to_ascii_lowercase();
        let mailbox = s.mailbox(&user);
        let thread = mailbox.referenced(&parse_headers(raw)).first().map(|i| mailbox.thread_of(*i));
        s.insert(&user, raw.to_owned(), thread.as_deref(), &["INBOX", "UNREAD"], false)
    }

    /// `user`'s drafts, oldest first.
    pub fn drafts(&self, user: &str) -> Vec<StoredMessage> {
        self.messages_where(user, |m| m.draft_id.is_some())
    }

    /// The messages `user` sent, oldest first.
    pub fn sent(&self, user: &str) -> Vec<StoredMessage> {
        self.messages_where(user, |m| m.label_ids.iter().any(|l| l == "SENT"))
    }

    /// Everything in `user`'s mailbox, oldest first.
    pub fn messages(&self, user: &str) -> Vec<StoredMessage> {
        self.messages_where(user, |_| true)
    }

    fn messages_where(&self, user: &str, keep: impl Fn(&StoredMessage) -> bool) -> Vec<StoredMessage> {
        let s = self.state();
        s.mailboxes
            .get(&user.to_ascii_lowercase())
            .map(|m| m.messages.iter().filter(|m| !m.gone).map(|m| &m.message).filter(|m| keep(m)).cloned().collect())
            .unwrap_or_default()
    }

    /// The rep edits draft `draft_id` in Gmail's web UI and its text becomes `text`. As in
    /// Gmail the draft id stays, while its message is replaced by a new one with a new id, in
    /// the same thread, with the same header fields (Message-ID included). Panics if `user`
    /// has no such draft.
    pub fn user_edits_draft(&self, user: &str, draft_id: &str, text: &str) -> StoredMessage {
        let mut s = self.state();
        let user = user.to_ascii_lowercase();
        let old = s.take_draft(&user, draft_id);
        let n = s.bump();
        let fields: Vec<String> = raw_fields(&old.raw)
            .into_iter()
            .filter(|(name, _)| !is_content_field(name))
            .map(|(_, field)| field)
            .collect();
        let raw = compose(&fields, text, n);
        s.store(&user, n, raw, Some(old.thread_id), &["DRAFT"], Some(draft_id.to_owned()))
    }

    /// The rep sends draft `draft_id` from Gmail's web UI, with its text and subject replaced
    /// when given. Sending deletes the draft and creates a new `SENT` message: a new id, a
    /// Message-ID Gmail makes up (not the draft's), the draft's From, To, Cc, Bcc and reply
    /// headers, and a text part (the draft's own when `text` is `None`) with an HTML twin;
    /// custom header fields and inline images are not carried over. It stays in the draft's
    /// thread unless the subject changed. Panics if `user` has no such draft.
    pub fn user_sends_draft(
        &self,
        user: &str,
        draft_id: &str,
        text: Option<&str>,
        subject: Option<&str>,
    ) -> StoredMessage {
        let mut s = self.state();
        let user = user.to_ascii_lowercase();
        let draft = s.take_draft(&user, draft_id);
        let n = s.bump();
        // Gmail's editor sends the text of what it shows: the HTML part, as text, links spelt
        // out; a draft without HTML keeps its own text.
        let text = match text {
            Some(t) => t.to_owned(),
            None => {
                let entity = parse_entity(&draft.raw, 0);
                match entity.find("text/html").map(Entity::text) {
                    Some(html) => editor_text(&html),
                    None => entity.find("text/plain").map(Entity::text).unwrap_or_default(),
                }
            }
        };
        const KEPT: &[&str] = &["From", "To", "Cc", "Bcc", "In-Reply-To", "References"];
        let mut fields: Vec<String> = raw_fields(&draft.raw)
            .into_iter()
            .filter(|(name, _)| {
                KEPT.iter().any(|k| k.eq_ignore_ascii_case(name))
                    || (subject.is_none() && name.eq_ignore_ascii_case("Subject"))
            })
            .map(|(_, field)| field)
            .collect();
        if let Some(subject) = subject {
            fields.push(header_field("Subject", subject));
        }
        fields.push(format!("Date: {}\r\n", jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S +0000")));
        fields.push(format!("Message-ID: <CAfake{}@mail.gmail.com>\r\n", gmail_id(n)));
        let raw = compose(&fields, &text, n);
        let same_subject =
            subject.is_none_or(|new| thread_subject(Some(new)) == thread_subject(draft.subject.as_deref()));
        let thread = same_subject.then_some(draft.thread_id);
        s.store(&user, n, raw, thread, &["SENT"], None)
    }

    /// The rep deletes draft `draft_id` in Gmail's web UI: the draft and its message are gone.
    /// Panics if `user` has no such draft.
    pub fn user_deletes_draft(&self, user: &str, draft_id: &str) {
        self.state().take_draft(&user.to_ascii_lowercase(), draft_id);
    }

    /// Counts so far.
    pub fn stats(&self) -> GmailStats {
        self.state().stats.clone()
    }
}

impl Drop for FakeGmail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop only sees the flag when a connection wakes it.
        let _ = TcpStream::connect(self.addr);
    }
}

/// HTML as Gmail's editor turns it into the text part of the message it sends: blocks on
/// lines of their own, list items starred, a link's address after its text, entities read.
fn editor_text(html: &str) -> String {
    let body = html.split_once("<body").map_or(html, |(_, b)| b.split_once('>').map_or(b, |(_, rest)| rest));
    let mut out = String::new();
    let mut rest = body;
    let mut href: Option<String> = None;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else { break };
        let tag = &rest[open + 1..open + close];
        let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
        let closing = tag.starts_with('/');
        match (name.as_str(), closing) {
            ("p" | "div" | "h1" | "h2" | "h3" | "ul" | "ol" | "tr", _) | ("br", false) => out.push('\n'),
            ("li", false) => out.push_str("\n  * "),
            ("a", false) => {
                href = tag.split_once("href=\"").and_then(|(_, v)| v.split_once('"')).map(|(u, _)| u.to_owned())
            }
            ("a", true) => {
                if let Some(url) = href.take() {
                    out.push_str(&format!(" <{url}>"));
                }
            }
            _ => {}
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let raw = crate::http::read(reader)?;
    let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
    Some(Request {
        method: raw.method.clone(),
        path: path.to_owned(),
        query: parse_pairs(query),
        headers: raw.headers,
        body: raw.body,
    })
}

/// `a=1&b=2` (a query string or a form body), decoded.
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// `%XX` escapes; `+` is a space only in query strings and forms, not in paths.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply::raw_json(status, body.to_string())
    }

    fn raw_json(status: u16, body: String) -> Reply {
        Reply { status, headers: Vec::new(), content_type: "application/json; charset=UTF-8", body }
    }

    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let latency = {
            let mut s = lock(state);
            s.in_flight += 1;
            s.stats.peak_in_flight = s.stats.peak_in_flight.max(s.in_flight);
            s.latency
        };
        std::thread::sleep(latency);
        let reply = {
            let mut s = lock(state);
            s.in_flight -= 1;
            s.answer(&request)
        };
        let close = request.headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nvary: Origin, X-Origin, Referer\r\n",
            reply.status,
            reason_phrase(reply.status),
            reply.content_type,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        if reader.get_mut().write_all(out.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Google's error envelope, with `error` as the one entry of `errors`.
fn google_error(code: u16, status: &str, message: &str, error: Value) -> Reply {
    Reply::json(code, &json!({"error": {"code": code, "message": message, "errors": [error], "status": status}}))
}

/// The usual kind of error: the entry repeats the message.
fn simple_error(code: u16, status: &str, reason: &str, message: &str) -> Reply {
    google_error(code, status, message, json!({"message": message, "domain": "global", "reason": reason}))
}

fn bad_request(reason: &str, message: &str) -> Reply {
    simple_error(400, "INVALID_ARGUMENT", reason, message)
}

fn not_found() -> Reply {
    simple_error(404, "NOT_FOUND", "notFound", "Requested entity was not found.")
}

const CREDENTIALS_HINT: &str = "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

fn unauthenticated(missing: bool) -> Reply {
    let (message, entry, reason) = if missing {
        (
            format!("Request is missing required authentication credential. {CREDENTIALS_HINT}"),
            "Login Required.",
            "required",
        )
    } else {
        (
            format!("Request had invalid authentication credentials. {CREDENTIALS_HINT}"),
            "Invalid Credentials",
            "authError",
        )
    };
    let entry = json!({"message": entry, "domain": "global", "reason": reason, "location": "Authorization",
                       "locationType": "header"});
    google_error(401, "UNAUTHENTICATED", &message, entry)
        .header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\"".to_owned())
}

fn insufficient_scope(method: Method) -> Reply {
    let body = json!({"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
        "errors": [{"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}],
        "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                     "domain": "googleapis.com",
                     "metadata": {"service": "gmail.googleapis.com",
                                  "method": format!("caribou.api.proto.MailboxService.{}", method.rpc())}}]}});
    let scopes = method.scopes().join(" ");
    Reply::json(403, &body).header(
        "www-authenticate",
        format!("Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{scopes}\""),
    )
}

fn user_rate_limited() -> Reply {
    let message = "User Rate Limit Exceeded";
    let entry = json!({"message": message, "domain": "usageLimits", "reason": "userRateLimitExceeded"});
    google_error(429, "RESOURCE_EXHAUSTED", message, entry)
}

/// What Google's front end sends when the backend's answer is lost.
fn lost_reply() -> Reply {
    let body = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error 502 (Server Error)!!1</title>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n  <p><b>502.</b> <ins>That’s an error.</ins>\n  <p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.  <ins>That’s all we know.</ins>\n";
    Reply { status: 502, headers: Vec::new(), content_type: "text/html; charset=UTF-8", body: body.to_owned() }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(status, &json!({"error": error, "error_description": description}))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    DraftsList,
    DraftsGet,
    DraftsCreate,
    MessagesList,
    MessagesGet,
    MessagesSend,
    ThreadsGet,
}

impl Method {
    fn route(self) -> &'static str {
        match self {
            Method::DraftsList => "GET drafts",
            Method::DraftsGet => "GET drafts/{id}",
            Method::DraftsCreate => "POST drafts",
            Method::MessagesList => "GET messages",
            Method::MessagesGet => "GET messages/{id}",
            Method::MessagesSend => "POST messages/send",
            Method::ThreadsGet => "GET threads/{id}",
        }
    }

    /// Quota units, from Gmail's quota table.
    fn cost(self) -> u64 {
        match self {
            Method::DraftsCreate | Method::ThreadsGet => 10,
            Method::MessagesSend => 100,
            _ => 5,
        }
    }

    /// The scopes the discovery document lists for the method.
    fn scopes(self) -> Vec<&'static str> {
        match self {
            Method::DraftsList | Method::DraftsGet => vec![SCOPE_MAIL, SCOPE_COMPOSE, SCOPE_MODIFY, SCOPE_READONLY],
            Method::DraftsCreate => vec![SCOPE_MAIL, ADDON_COMPOSE, SCOPE_COMPOSE, SCOPE_MODIFY],
            Method::MessagesList => vec![SCOPE_MAIL, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY],
            Method::MessagesGet | Method::ThreadsGet => {
                let mut s = vec![SCOPE_MAIL, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY];
                s.extend_from_slice(ADDON_MESSAGE);
                s
            }
            Method::MessagesSend => vec![SCOPE_MAIL, ADDON_COMPOSE, SCOPE_COMPOSE, SCOPE_MODIFY, SCOPE_SEND],
        }
    }

    /// The backend method Google names in a scope error.
    fn rpc(self) -> &'static str {
        match self {
            Method::DraftsList => "ListDrafts",
            Method::DraftsGet => "GetDraft",
            Method::DraftsCreate => "CreateDraft",
            Method::MessagesList => "ListMessages",
            Method::MessagesGet => "GetMessage",
            Method::MessagesSend => "SendMessage",
            Method::ThreadsGet => "GetThread",
        }
    }

    fn creates(self) -> bool {
        matches!(self, Method::DraftsCreate | Method::MessagesSend)
    }
}

/// A Gmail method, the path's `userId` and the id it names, if any.
fn route(method: &str, path: &str) -> Option<(Method, String, Option<String>)> {
    let segments: Vec<&str> = path.strip_prefix("/gmail/v1/users/")?.split('/').collect();
    let (m, id) = match (method, segments.as_slice()) {
        ("GET", [_, "drafts"]) => (Method::DraftsList, None),
        ("POST", [_, "drafts"]) => (Method::DraftsCreate, None),
        ("GET", [_, "drafts", id]) if !id.is_empty() => (Method::DraftsGet, Some(percent_decode(id, false))),
        ("GET", [_, "messages"]) => (Method::MessagesList, None),
        ("POST", [_, "messages", "send"]) => (Method::MessagesSend, None),
        ("GET", [_, "messages", id]) if !id.is_empty() => (Method::MessagesGet, Some(percent_decode(id, false))),
        ("GET", [_, "threads", id]) if !id.is_empty() => (Method::ThreadsGet, Some(percent_decode(id, false))),
        _ => return None,
    };
    Some((m, percent_decode(segments[0], false), id))
}

/// Strict base64 in either alphabet, padding optional, as Google's JSON parser reads bytes.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const EITHER: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    base64::Engine::decode(&EITHER, text.replace('+', "-").replace('/', "_")).ok()
}

/// Base64url without padding, as Gmail returns `raw`.
pub fn base64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// The header fields of an RFC 5322 message: unfolded (the fold's whitespace kept), encoded
/// words decoded, as Gmail shows them in `payload.headers`.
fn parse_headers(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out.into_iter().map(|(k, v)| (k, decode_words(&v))).collect()
}

/// RFC 2047: `=?charset?B|Q?text?=` runs; whitespace between adjacent encoded words is not
/// text, and their bytes are joined before decoding since a character may span two words.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        match encoded_word(&rest[start..]) {
            Some((bytes, len)) => {
                if pending.is_empty() || !before.trim().is_empty() {
                    out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                    out.push_str(before);
                }
                pending.extend(bytes);
                rest = &rest[start + len..];
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(rest);
    out
}

/// The bytes of the encoded word `text` starts with, and its length.
fn encoded_word(text: &str) -> Option<(Vec<u8>, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let word = &after[..end];
    if charset.is_empty() || charset.contains(char::is_whitespace) || word.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => decode_base64(word)?,
        "Q" | "q" => {
            let mut out = Vec::new();
            let mut i = 0;
            let raw = word.as_bytes();
            while i < raw.len() {
                match (raw[i], word.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
                    (b'=', Some(b)) => {
                        out.push(b);
                        i += 3;
                    }
                    (b'_', _) => {
                        out.push(b' ');
                        i += 1;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            out
        }
        _ => return None,
    };
    Some((bytes, 2 + charset.len() + 1 + encoding.len() + 1 + end + 2))
}

/// A Message-ID compared as Gmail's `rfc822msgid:` search does: with or without brackets.
fn norm_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

/// The Message-IDs an `In-Reply-To` or `References` value names.
fn ids_in(value: &str) -> Vec<String> {
    let bracketed: Vec<String> =
        value.split('<').skip(1).filter_map(|s| s.split_once('>')).map(|(id, _)| norm_id(id)).collect();
    if bracketed.is_empty() { value.split_whitespace().map(norm_id).collect() } else { bracketed }
}

/// A subject as threading compares it: without `Re:`/`Fwd:` prefixes, case or outer spaces.
fn thread_subject(subject: Option<&str>) -> String {
    let mut s = subject.unwrap_or_default().trim().to_lowercase();
    loop {
        let stripped =
            ["re:", "fwd:", "fw:", "aw:"].iter().find_map(|p| s.strip_prefix(p)).map(|r| r.trim().to_owned());
        match stripped {
            Some(r) => s = r,
            None => return s,
        }
    }
}

fn header_of(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

impl Mailbox {
    fn thread_of(&self, index: usize) -> String {
        self.messages[index].message.thread_id.clone()
    }

    /// Indices of the messages that `headers`' reply headers name, most recent first.
    fn referenced(&self, headers: &[(String, String)]) -> Vec<usize> {
        let mut ids: Vec<String> = Vec::new();
        for name in ["In-Reply-To", "References"] {
            if let Some(v) = header_of(headers, name) {
                ids.extend(ids_in(&v));
            }
        }
        let mut found: Vec<usize> = ids.iter().filter_map(|id| self.by_message_id.get(id)).flatten().copied().collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.dedup();
        found
    }

    /// Gmail's rule: a message joins `thread` only when the thread exists, the message's reply
    /// headers name one of its messages, and the subjects match.
    fn joins(&self, thread: &str, headers: &[(String, String)]) -> bool {
        let Some(members) = self.threads.get(thread) else { return false };
        let refers = self.referenced(headers).iter().any(|i| members.contains(i));
        let subject = thread_subject(header_of(headers, "Subject").as_deref());
        let first = members.first().map(|i| thread_subject(self.messages[*i].message.subject.as_deref()));
        refers && first.as_deref() == Some(subject.as_str())
    }

    /// Message `index` disappears: marked gone and dropped from every map, its thread with it
    /// when it was the last message there.
    fn remove(&mut self, index: usize) {
        let Some(stored) = self.messages.get_mut(index) else { return };
        stored.gone = true;
        let m = &stored.message;
        self.by_id.remove(&m.id);
        self.drafts.retain(|_, i| *i != index);
        let keys = [norm_id(&m.message_id), m.thread_id.clone()];
        for (map, key) in [&mut self.by_message_id, &mut self.threads].into_iter().zip(keys) {
            if let Some(list) = map.get_mut(&key) {
                list.retain(|i| *i != index);
                if list.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }
}

/// A query's `maxResults` and `pageToken` (an offset in this fake).
fn page<T: Clone>(items: &[T], r: &Request) -> (Vec<T>, Option<String>) {
    let size = r.param("maxResults").and_then(|m| m.parse::<usize>().ok()).unwrap_or(100).clamp(1, 500);
    let start = r.param("pageToken").and_then(|p| p.parse::<usize>().ok()).unwrap_or(0).min(items.len());
    let end = (start + size).min(items.len());
    (items[start..end].to_vec(), (end < items.len()).then(|| end.to_string()))
}

impl State {
    fn mailbox(&mut self, user: &str) -> &mut Mailbox {
        self.mailboxes.entry(user.to_owned()).or_default()
    }

    fn answer(&mut self, r: &Request) -> Reply {
        self.stats.requests += 1;
        let call = route(&r.method, &r.path);
        let name = match (&call, r.path.as_str()) {
            (Some((m, _, _)), _) => m.route().to_owned(),
            (None, "/token") => format!("{} token", r.method),
            (None, path) => format!("{} {path}", r.method),
        };
        *self.stats.routes.entry(name).or_default() += 1;
        if r.path == "/token" {
            if r.method != "POST" {
                return oauth_error(405, "invalid_request", "The token endpoint only accepts POST.");
            }
            return self.issue_token(r);
        }
        self.gmail(r, call)
    }

    fn issue_token(&mut self, r: &Request) -> Reply {
        if let Some((status, body)) = self.token_failures.pop_front() {
            return Reply::raw_json(status, body);
        }
        let form = parse_pairs(&String::from_utf8_lossy(&r.body));
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default();
        if field("grant_type") != JWT_BEARER {
            return oauth_error(400, "unsupported_grant_type", &format!("Invalid grant_type: {}", field("grant_type")));
        }
        // The signature is not checked: the claims are what the fake needs to act on.
        let claims = field("assertion")
            .split('.')
            .nth(1)
            .and_then(decode_base64)
            .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
            .filter(Value::is_object);
        let Some(claims) = claims else { return oauth_error(400, "invalid_grant", "Invalid JWT Signature.") };
        let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
        if aud != self.token_uri && aud != GOOGLE_TOKEN_URI {
            return oauth_error(
                400,
                "invalid_grant",
                &format!("Invalid JWT: Failed audience check. The right audience is {}", self.token_uri),
            );
        }
        let now = jiff::Timestamp::now().as_second();
        let (iat, exp) = (claims.get("iat").and_then(Value::as_i64), claims.get("exp").and_then(Value::as_i64));
        // Google allows a few minutes of clock skew, and no assertion longer than an hour.
        let timely = match (iat, exp) {
            (Some(iat), Some(exp)) => exp > iat && exp - iat <= 3600 && iat <= now + 300 && exp >= now - 300,
            _ => false,
        };
        if !timely {
            return oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
            );
        }
        let scopes: Vec<String> = claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            return oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
        }
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
        // Delegation is what the Admin console grants; a service account acting as itself
        // (no `sub`) gets any scope, and Gmail then refuses it.
        if !sub.is_empty() && !scopes.iter().all(|s| self.granted.contains(s)) {
            self.stats.tokens_refused += 1;
            return oauth_error(401, "unauthorized_client", UNAUTHORIZED_CLIENT);
        }
        self.next += 1;
        let port = self.token_uri.rsplit(':').next().unwrap_or_default().trim_end_matches("/token").to_owned();
        let token = format!("ya29.fake{port}-{:06}", self.next);
        let expires = Instant::now() + Duration::from_secs(TOKEN_LIFETIME);
        self.tokens.insert(token.clone(), Grant { sub, scopes, expires });
        self.stats.tokens_issued += 1;
        Reply::json(200, &json!({"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}))
    }

    fn gmail(&mut self, r: &Request, call: Option<(Method, String, Option<String>)>) -> Reply {
        let bearer = r.headers.get("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
        let Some(bearer) = bearer else { return unauthenticated(true) };
        let grant = self.tokens.get(bearer).filter(|g| g.expires > Instant::now()).cloned();
        let Some(grant) = grant else { return unauthenticated(false) };
        if let Some((status, body)) = self.failures.pop_front() {
            return Reply::raw_json(status, body);
        }
        let Some((method, user_id, id)) = call else { return not_found() };
        if user_id != "me" && !user_id.eq_ignore_ascii_case(&grant.sub) {
            return simple_error(
                403,
                "PERMISSION_DENIED",
                "forbidden",
                &format!("Delegation denied for {}", grant.sub),
            );
        }
        let accepted = method.scopes();
        let usable: Vec<&str> = grant.scopes.iter().map(String::as_str).filter(|s| accepted.contains(s)).collect();
        if usable.is_empty() {
            self.stats.insufficient_scope += 1;
            return insufficient_scope(method);
        }
        let metadata_only = usable.iter().all(|s| *s == SCOPE_METADATA);
        if grant.sub.is_empty() {
            // What Gmail answers a service account without a mailbox of its own.
            return simple_error(400, "FAILED_PRECONDITION", "failedPrecondition", "Precondition check failed.");
        }
        let user = grant.sub;
        if self.over_quota(&user, method.cost()) {
            self.stats.rate_limited += 1;
            return user_rate_limited();
        }
        let id = id.unwrap_or_default();
        let reply = match method {
            Method::DraftsList => self.list(&user, r, true, false),
            Method::MessagesList => self.list(&user, r, false, metadata_only),
            Method::DraftsGet => self.get(&user, &id, r, true, false),
            Method::MessagesGet => self.get(&user, &id, r, false, metadata_only),
            Method::DraftsCreate => self.create(&user, &r.body, true),
            Method::MessagesSend => self.create(&user, &r.body, false),
            Method::ThreadsGet => self.thread(&user, &id, r, metadata_only),
        };
        if self.lose_any > 0 {
            self.lose_any -= 1;
            return lost_reply();
        }
        if method.creates() && reply.status == 200 && self.lose_write > 0 {
            self.lose_write -= 1;
            return lost_reply();
        }
        reply
    }

    /// Spends `cost` of `user`'s units in the moving second, unless that would go over.
    fn over_quota(&mut self, user: &str, cost: u64) -> bool {
        let now = Instant::now();
        let limit = u64::from(self.units_per_second);
        let window = self.windows.entry(user.to_owned()).or_default();
        while let Some((at, units)) = window.spent.front().copied() {
            if now.duration_since(at) < Duration::from_secs(1) {
                break;
            }
            window.spent.pop_front();
            window.sum -= units;
        }
        if limit > 0 && window.sum + cost > limit {
            return true;
        }
        window.spent.push_back((now, cost));
        window.sum += cost;
        self.stats.peak_user_units_per_second = self.stats.peak_user_units_per_second.max(window.sum);
        false
    }

    /// `users.drafts.list` or `users.messages.list`, newest first.
    fn list(&mut self, user: &str, r: &Request, drafts: bool, metadata_only: bool) -> Reply {
        let q = r.param("q").unwrap_or_default().trim().to_owned();
        if metadata_only && !q.is_empty() {
            return simple_error(
                403,
                "PERMISSION_DENIED",
                "forbidden",
                "Metadata scope does not support 'q' parameter",
            );
        }
        let Some(terms) = parse_search(&q) else {
            return bad_request(
                "invalidArgument",
                "This fake Gmail searches only with rfc822msgid:, in:sent, in:drafts, to:, after: and before:.",
            );
        };
        // `labelIds` is a parameter of messages.list only.
        let labels: Vec<&str> = if drafts {
            Vec::new()
        } else {
            r.query.iter().filter(|(k, _)| k == "labelIds").map(|(_, v)| v.as_str()).collect()
        };
        let mailbox = self.mailbox(user);
        let mut hits: Vec<usize> = mailbox
            .messages
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.gone && (!drafts || s.message.draft_id.is_some()))
            .filter(|(_, s)| labels.iter().all(|l| s.message.label_ids.iter().any(|have| have.as_str() == *l)))
            .filter(|(_, s)| terms.iter().all(|t| t.matches(s)))
            .map(|(i, _)| i)
            .collect();
        hits.reverse();
        let (shown, next) = page(&hits, r);
        let items: Vec<Value> = shown
            .iter()
            .map(|i| {
                let m = &mailbox.messages[*i].message;
                let reference = json!({"id": m.id, "threadId": m.thread_id});
                if drafts { json!({"id": m.draft_id, "message": reference}) } else { reference }
            })
            .collect();
        let mut body = json!({"resultSizeEstimate": hits.len()});
        if !items.is_empty() {
            body[if drafts { "drafts" } else { "messages" }] = Value::Array(items);
        }
        if let Some(next) = next {
            body["nextPageToken"] = json!(next);
        }
        Reply::json(200, &body)
    }

    /// `users.drafts.get` or `users.messages.get` in the asked `format`.
    fn get(&mut self, user: &str, id: &str, r: &Request, draft: bool, metadata_only: bool) -> Reply {
        let format = match format_of(r, &["minimal", "full", "raw", "metadata"], metadata_only) {
            Ok(format) => format,
            Err(refused) => return refused,
        };
        if !draft && !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad_request("invalidArgument", "Invalid id value");
        }
        let wanted = wanted_headers(r);
        let mailbox = self.mailbox(user);
        let index = if draft { mailbox.drafts.get(id) } else { mailbox.by_id.get(id) };
        let Some(stored) = index.map(|i| &mailbox.messages[*i]) else { return not_found() };
        let message = message_json(stored, &format, &wanted);
        if draft { Reply::json(200, &json!({"id": id, "message": message})) } else { Reply::json(200, &message) }
    }

    /// `users.threads.get`: the thread's messages oldest first, each in the asked `format`.
    fn thread(&mut self, user: &str, id: &str, r: &Request, metadata_only: bool) -> Reply {
        // A thread has no `raw` format.
        let format = match format_of(r, &["minimal", "full", "metadata"], metadata_only) {
            Ok(format) => format,
            Err(refused) => return refused,
        };
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad_request("invalidArgument", "Invalid id value");
        }
        let wanted = wanted_headers(r);
        let mailbox = self.mailbox(user);
        let Some(members) = mailbox.threads.get(id) else { return not_found() };
        let mut live: Vec<&Stored> = members.iter().map(|i| &mailbox.messages[*i]).filter(|s| !s.gone).collect();
        if live.is_empty() {
            return not_found();
        }
        live.sort_by_key(|s| (s.internal_date, s.history_id));
        let history_id = live.iter().map(|s| s.history_id).max().unwrap_or_default();
        let messages: Vec<Value> = live.iter().map(|s| message_json(s, &format, &wanted)).collect();
        Reply::json(200, &json!({"id": id, "historyId": history_id.to_string(), "messages": messages}))
    }

    /// `users.drafts.create` (`{"message": {...}}`) or `users.messages.send` (the message).
    fn create(&mut self, user: &str, body: &[u8], draft: bool) -> Reply {
        let body: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request("invalid", &format!("Invalid JSON payload received. {e}.")),
            }
        };
        let Some(top) = body.as_object() else {
            return bad_request("invalid", "Invalid JSON payload received. Expected an object.");
        };
        const DRAFT_FIELDS: &[&str] = &["id", "message"];
        const MESSAGE_FIELDS: &[&str] = &[
            "id",
            "threadId",
            "thread_id",
            "labelIds",
            "label_ids",
            "snippet",
            "historyId",
            "history_id",
            "internalDate",
            "internal_date",
            "payload",
            "sizeEstimate",
            "size_estimate",
            "raw",
            "classificationLabelValues",
            "classification_label_values",
        ];
        let (message, at) = if draft {
            if let Some(k) = top.keys().find(|k| !DRAFT_FIELDS.contains(&k.as_str())) {
                return bad_request(
                    "invalid",
                    &format!("Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."),
                );
            }
            (top.get("message").cloned().unwrap_or(json!({})), "message.")
        } else {
            (body.clone(), "")
        };
        let Some(fields) = message.as_object() else {
            return bad_request(
                "invalid",
                &format!(
                    "Invalid value at '{}' (type.googleapis.com/caribou.api.proto.Message)",
                    at.trim_end_matches('.')
                ),
            );
        };
        if let Some(k) = fields.keys().find(|k| !MESSAGE_FIELDS.contains(&k.as_str())) {
            let place = if draft { " at 'message'" } else { "" };
            return bad_request(
                "invalid",
                &format!("Invalid JSON payload received. Unknown name \"{k}\"{place}: Cannot find field."),
            );
        }
        let raw = match message.get("raw") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => match decode_base64(s) {
                Some(bytes) => Some(bytes),
                None => {
                    let shown: String = s.chars().take(200).collect();
                    return bad_request(
                        "invalid",
                        &format!("Invalid value at '{at}raw' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""),
                    );
                }
            },
            Some(other) => return bad_request("invalid", &format!("Invalid value at '{at}raw' (TYPE_BYTES), {other}")),
        };
        let Some(raw) = raw else {
            return bad_request(
                "invalidArgument",
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
            );
        };
        let thread = match message.get("threadId").or(message.get("thread_id")) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t.clone()),
            Some(other) => {
                return bad_request("invalid", &format!("Invalid value at '{at}thread_id' (TYPE_STRING), {other}"));
            }
        };
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let headers = parse_headers(&raw);
        if !draft && !["To", "Cc", "Bcc"].iter().any(|h| header_of(&headers, h).is_some_and(|v| v.contains('@'))) {
            return bad_request("invalidArgument", "Recipient address required");
        }
        let label = if draft { "DRAFT" } else { "SENT" };
        let stored = self.insert(user, raw, thread.as_deref(), &[label], draft);
        let reference = json!({"id": stored.id, "threadId": stored.thread_id, "labelIds": stored.label_ids});
        if draft {
            Reply::json(200, &json!({"id": stored.draft_id, "message": reference}))
        } else {
            Reply::json(200, &reference)
        }
    }

    fn bump(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// A message a client created: it joins `thread` only by Gmail's threading rule.
    fn insert(&mut self, user: &str, raw: String, thread: Option<&str>, labels: &[&str], draft: bool) -> StoredMessage {
        let headers = parse_headers(&raw);
        let mailbox = self.mailbox(user);
        let thread = thread.filter(|t| mailbox.joins(t, &headers)).map(str::to_owned);
        let n = self.bump();
        let draft_id = draft.then(|| format!("r-{}", 5_327_893_210_984_700_000u64 + n));
        self.store(user, n, raw, thread, labels, draft_id)
    }

    /// Stores message number `n` in `thread`, or in a thread of its own (whose id is its id).
    fn store(
        &mut self,
        user: &str,
        n: u64,
        raw: String,
        thread: Option<String>,
        labels: &[&str],
        draft_id: Option<String>,
    ) -> StoredMessage {
        let id = gmail_id(n);
        let headers = parse_headers(&raw);
        let thread_id = thread.unwrap_or_else(|| id.clone());
        // Gmail gives a message without a Message-ID one of its own.
        let message_id = header_of(&headers, "Message-ID").unwrap_or_else(|| format!("<fake.{id}@mail.gmail.com>"));
        let message = StoredMessage {
            id: id.clone(),
            thread_id: thread_id.clone(),
            draft_id,
            label_ids: labels.iter().map(|l| (*l).to_owned()).collect(),
            raw,
            message_id: message_id.clone(),
            subject: header_of(&headers, "Subject"),
            from: header_of(&headers, "From"),
            to: header_of(&headers, "To"),
            cc: header_of(&headers, "Cc"),
            bcc: header_of(&headers, "Bcc"),
            in_reply_to: header_of(&headers, "In-Reply-To"),
            headers,
        };
        let mailbox = self.mailbox(user);
        let index = mailbox.messages.len();
        mailbox.by_id.insert(id, index);
        mailbox.by_message_id.entry(norm_id(&message_id)).or_default().push(index);
        mailbox.threads.entry(thread_id).or_default().push(index);
        if let Some(d) = &message.draft_id {
            mailbox.drafts.insert(d.clone(), index);
        }
        let internal_date = jiff::Timestamp::now().as_millisecond();
        mailbox.messages.push(Stored { message: message.clone(), internal_date, history_id: 100_000 + n, gone: false });
        message
    }

    /// Removes `user`'s draft `draft_id` and its message, returning the message. Only tests
    /// name drafts here, and one naming a draft the mailbox lacks is wrong, hence the panic.
    fn take_draft(&mut self, user: &str, draft_id: &str) -> StoredMessage {
        let mailbox = self.mailbox(user);
        let Some(index) = mailbox.drafts.get(draft_id).copied() else {
            panic!("{user} has no draft {draft_id}");
        };
        mailbox.remove(index);
        mailbox.messages[index].message.clone()
    }
}

/// A `Message` resource in `format`; `wanted` limits a metadata answer to those headers.
fn message_json(stored: &Stored, format: &str, wanted: &[String]) -> Value {
    let m = &stored.message;
    let entity = parse_entity(&m.raw, 0);
    let mut v = json!({"id": m.id, "threadId": m.thread_id, "labelIds": m.label_ids, "snippet": snippet(&entity),
                       "sizeEstimate": m.raw.len(), "historyId": stored.history_id.to_string(),
                       "internalDate": stored.internal_date.to_string()});
    match format {
        "raw" => v["raw"] = json!(base64url(m.raw.as_bytes())),
        "metadata" => {
            let shown: Vec<Value> = m
                .headers
                .iter()
                .filter(|(k, _)| wanted.is_empty() || wanted.contains(&k.to_ascii_lowercase()))
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            v["payload"] = json!({"partId": "", "mimeType": entity.mime_type, "filename": "", "headers": shown});
        }
        "full" => v["payload"] = part_json(&entity, "", &m.id),
        _ => {}
    }
    v
}

/// The `format` asked for among `formats`, or Gmail's refusal: the metadata scope reads no
/// bodies.
fn format_of(r: &Request, formats: &[&str], metadata_only: bool) -> Result<String, Reply> {
    let format = r.param("format").unwrap_or("full").to_ascii_lowercase();
    if !formats.contains(&format.as_str()) {
        return Err(bad_request(
            "invalid",
            &format!("Invalid value at 'format' (type.googleapis.com/caribou.api.proto.MessageFormat), \"{format}\""),
        ));
    }
    if metadata_only && (format == "full" || format == "raw") {
        let message = format!("Metadata scope doesn't allow format {}", format.to_uppercase());
        return Err(simple_error(403, "PERMISSION_DENIED", "forbidden", &message));
    }
    Ok(format)
}

/// The `metadataHeaders` asked for, lower-cased.
fn wanted_headers(r: &Request) -> Vec<String> {
    r.query.iter().filter(|(k, _)| k == "metadataHeaders").map(|(_, v)| v.to_ascii_lowercase()).collect()
}

/// Gmail's message id for the fake's `n`th object.
fn gmail_id(n: u64) -> String {
    format!("{:016x}", 0x18d2_c0f6_b1a2_0000u64 + n)
}

/// One term of a `q` search, of those the fake understands.
enum Term {
    MessageId(String),
    Label(&'static str),
    Draft,
    /// An address (lower-case) in To, Cc or Bcc.
    To(String),
    /// At or after this epoch millisecond.
    After(i64),
    /// Before this epoch millisecond.
    Before(i64),
}

impl Term {
    fn matches(&self, stored: &Stored) -> bool {
        let m = &stored.message;
        match self {
            Term::MessageId(id) => norm_id(&m.message_id) == *id,
            Term::Label(label) => m.label_ids.iter().any(|l| l.as_str() == *label),
            Term::Draft => m.draft_id.is_some(),
            Term::To(address) => [&m.to, &m.cc, &m.bcc]
                .iter()
                .any(|h| h.as_deref().is_some_and(|v| v.to_ascii_lowercase().contains(address.as_str()))),
            Term::After(at) => stored.internal_date >= *at,
            Term::Before(at) => stored.internal_date < *at,
        }
    }
}

/// `q` as terms that must all match; `None` when a term is one the fake does not understand,
/// so a test never passes on a search Gmail would read differently.
fn parse_search(q: &str) -> Option<Vec<Term>> {
    q.split_whitespace()
        .map(|term| {
            let (op, value) = term.split_once(':')?;
            if value.is_empty() {
                return None;
            }
            let (op, lower) = (op.to_ascii_lowercase(), value.to_ascii_lowercase());
            Some(match (op.as_str(), lower.as_str()) {
                ("rfc822msgid", _) => Term::MessageId(norm_id(value)),
                ("in", "sent") => Term::Label("SENT"),
                ("in", "drafts") => Term::Draft,
                ("to", _) => Term::To(value.to_ascii_lowercase()),
                ("after", _) => Term::After(search_time(value)?),
                ("before", _) => Term::Before(search_time(value)?),
                _ => return None,
            })
        })
        .collect()
}

/// An `after:`/`before:` value in epoch milliseconds: epoch seconds, or `YYYY/MM/DD` read as
/// midnight UTC.
fn search_time(value: &str) -> Option<i64> {
    let digits = |s: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if digits(value, 1..=12) {
        return value.parse::<i64>().ok()?.checked_mul(1000);
    }
    let fields: Vec<&str> = value.split('/').collect();
    let &[year, month, day] = fields.as_slice() else { return None };
    if !(digits(year, 4..=4) && digits(month, 1..=2) && digits(day, 1..=2)) {
        return None;
    }
    let (month, day): (u8, u8) = (month.parse().ok()?, day.parse().ok()?);
    let midnight: jiff::Timestamp = format!("{year}-{month:02}-{day:02}T00:00:00Z").parse().ok()?;
    Some(midnight.as_millisecond())
}

/// A MIME entity of a stored message, as `format=full` shows it.
struct Entity {
    headers: Vec<(String, String)>,
    /// `type/subtype`, lower-case.
    mime_type: String,
    filename: String,
    /// The body with its transfer encoding undone; empty for a multipart.
    body: Vec<u8>,
    /// A multipart's parts.
    parts: Option<Vec<Entity>>,
}

impl Entity {
    /// The first leaf of type `mime_type`, depth first.
    fn find(&self, mime_type: &str) -> Option<&Entity> {
        match &self.parts {
            Some(parts) => parts.iter().find_map(|p| p.find(mime_type)),
            None => (self.mime_type == mime_type).then_some(self),
        }
    }

    /// The body as text: UTF-8 unless the charset is Latin-1.
    fn text(&self) -> String {
        let charset = header_of(&self.headers, "Content-Type")
            .and_then(|c| mime_param(&c, "charset"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if charset == "iso-8859-1" || charset == "latin1" {
            self.body.iter().map(|b| char::from(*b)).collect()
        } else {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }
}

/// The MIME tree of `text` (a message or one of its parts). Nesting deeper than any real
/// message is read as a leaf rather than recursed into.
fn parse_entity(text: &str, depth: usize) -> Entity {
    let (head, content) = split_head(text);
    let headers = parse_headers(head);
    let content_type = header_of(&headers, "Content-Type").unwrap_or_default();
    let mime_type = content_type
        .split(';')
        .next()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "text/plain".to_owned());
    let filename = header_of(&headers, "Content-Disposition")
        .and_then(|d| mime_param(&d, "filename"))
        .or_else(|| mime_param(&content_type, "name"))
        .unwrap_or_default();
    let boundary = mime_param(&content_type, "boundary").filter(|b| !b.is_empty());
    let (body, parts) = match boundary {
        Some(b) if mime_type.starts_with("multipart/") && depth < 16 => {
            let parts: Vec<Entity> =
                split_multipart(content, &b).into_iter().map(|p| parse_entity(p, depth + 1)).collect();
            (Vec::new(), Some(parts))
        }
        _ => (decode_transfer(content, header_of(&headers, "Content-Transfer-Encoding").as_deref()), None),
    };
    Entity { headers, mime_type, filename, body, parts }
}

/// An entity's header block and its body, which starts after the first empty line.
fn split_head(text: &str) -> (&str, &str) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']).is_empty() {
            return (&text[..at], &text[at + line.len()..]);
        }
        at += line.len();
    }
    (text, "")
}

/// The parts between `boundary`'s delimiter lines (RFC 2046), without preamble or epilogue;
/// the line break before a delimiter belongs to the delimiter.
fn split_multipart<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut at = 0;
    for line in body.split_inclusive('\n') {
        let rest = line.trim_end_matches(['\r', '\n']).strip_prefix(delimiter.as_str()).map(str::trim_end);
        if let Some(rest @ ("" | "--")) = rest {
            if let Some(from) = start {
                let part = &body[from..at];
                parts.push(part.strip_suffix("\r\n").or_else(|| part.strip_suffix('\n')).unwrap_or(part));
            }
            if rest == "--" {
                return parts;
            }
            start = Some(at + line.len());
        }
        at += line.len();
    }
    // A message cut short keeps its last part.
    if let Some(from) = start {
        parts.push(&body[from..]);
    }
    parts
}

/// A parameter of a `Content-Type` or `Content-Disposition` value, unquoted.
fn mime_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A leaf's bytes with its `Content-Transfer-Encoding` undone (7bit, 8bit and binary are as
/// written).
fn decode_transfer(content: &str, encoding: Option<&str>) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => {
            let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            decode_base64(&compact).unwrap_or_default()
        }
        Some("quoted-printable") => decode_quoted_printable(content),
        _ => content.as_bytes().to_vec(),
    }
}

/// RFC 2045 quoted-printable: `=XX` bytes, `=` at a line's end joins it to the next, trailing
/// whitespace is padding, and line breaks are CRLF.
fn decode_quoted_printable(content: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut lines = content.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line).trim_end_matches([' ', '\t']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(joined) => (joined, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            match (bytes[i], hex) {
                (b'=', Some(h)) => {
                    out.push((hex_value(h[0]) << 4) | hex_value(h[1]));
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if !soft && lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// The value of an ASCII hex digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// An entity as a `MessagePart`: a leaf's bytes as base64url in `body.data`, or, for a file
/// (an inline image too), an `attachmentId` to fetch it by.
fn part_json(e: &Entity, part_id: &str, message: &str) -> Value {
    let headers: Vec<Value> = e.headers.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    let mut v = json!({"partId": part_id, "mimeType": e.mime_type, "filename": e.filename, "headers": headers});
    match &e.parts {
        Some(parts) => {
            let children: Vec<Value> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let id = if part_id.is_empty() { i.to_string() } else { format!("{part_id}.{i}") };
                    part_json(p, &id, message)
                })
                .collect();
            v["body"] = json!({"size": 0});
            v["parts"] = Value::Array(children);
        }
        None if !e.filename.is_empty() => {
            let attachment = format!("ANGjdJ_fake_{}", base64url(format!("{message}/{part_id}").as_bytes()));
            v["body"] = json!({"size": e.body.len(), "attachmentId": attachment});
        }
        None if e.body.is_empty() => v["body"] = json!({"size": 0}),
        None => v["body"] = json!({"size": e.body.len(), "data": base64url_padded(&e.body)}),
    }
    v
}

/// Base64url with padding, as Gmail returns a part's `body.data`.
fn base64url_padded(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, bytes)
}

/// Gmail's `snippet`: the start of the text part, whitespace collapsed, HTML-escaped.
fn snippet(e: &Entity) -> String {
    let text = e.find("text/plain").map(Entity::text).unwrap_or_default();
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let start: String = collapsed.chars().take(200).collect();
    escape_html(start.trim_end())
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The header fields of `raw` as written, each with its name and its whole text (folded lines
/// included, ending in a line break).
fn raw_fields(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare.is_empty() {
            break;
        }
        if bare.starts_with([' ', '\t']) {
            if let Some((_, field)) = out.last_mut() {
                field.push_str(line);
            }
        } else {
            let name = bare.split_once(':').map(|(k, _)| k.trim().to_owned()).unwrap_or_default();
            out.push((name, line.to_owned()));
        }
    }
    out
}

/// The fields that describe a body, which a rewritten body replaces.
fn is_content_field(name: &str) -> bool {
    name.eq_ignore_ascii_case("MIME-Version") || name.to_ascii_lowercase().starts_with("content-")
}

/// A header field, as RFC 2047 encoded words when the value is not printable ASCII.
fn header_field(name: &str, value: &str) -> String {
    let value: String = value.chars().filter(|c| !c.is_control()).collect();
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) && !value.contains("=?") {
        return format!("{name}: {value}\r\n");
    }
    let mut words = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        if current.len() + c.len_utf8() > 42 {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    words.push(current);
    let encoded: Vec<String> = words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, w)))
        .collect();
    format!("{name}: {}\r\n", encoded.join("\r\n "))
}

/// A message as Gmail's composer writes one: the header `fields`, then `text` as a plain part
/// and as a simple HTML part in a `multipart/alternative`.
fn compose(fields: &[String], text: &str, n: u64) -> String {
    let boundary = format!("000000000000{n:012x}");
    let canonical = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let html = format!("<div dir=\"ltr\">{}</div>", escape_html(&text.replace("\r\n", "\n")).replace('\n', "<br>"));
    let mut m = String::new();
    for field in fields {
        m.push_str(&field.replace("\r\n", "\n").trim_end_matches('\n').replace('\n', "\r\n"));
        m.push_str("\r\n");
    }
    m.push_str(&format!("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"));
    for (kind, body) in [("plain", &canonical), ("html", &html)] {
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/{kind}; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        m.push_str(&base64_lines(body.as_bytes()));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

/// Base64 in lines of 76 characters, each ended by CRLF (RFC 2045).
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    let mut rest = encoded.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(76));
        out.push_str(line);
        out.push_str("\r\n");
        rest = tail;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use super::*;

    /// One response from a keep-alive connection: status, lower-cased head, JSON body (or a
    /// string for anything else).
    fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, String, Value) {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim_end().is_empty() {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let text = String::from_utf8(body).unwrap();
        (status, head, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn request(method: &str, path: &str, token: Option<&str>, body: &str) -> String {
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        format!("{method} {path} HTTP/1.1\r\nhost: gmail\r\n{auth}content-length: {}\r\n\r\n{body}", body.len())
    }

    fn call(fake: &FakeGmail, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String, Value) {
        let mut stream = TcpStream::connect(fake.addr).unwrap();
        stream.write_all(request(method, path, token, body).as_bytes()).unwrap();
        read_response(&mut BufReader::new(stream))
    }

    /// The token request `tam`'s service account makes (unsigned: the fake reads only claims).
    fn token_response(fake: &FakeGmail, sub: &str, scope: &str) -> (u16, Value) {
        let now = jiff::Timestamp::now().as_second();
        let header = base64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({"iss": "tam@p.iam.gserviceaccount.com", "scope": scope, "aud": fake.token_uri(),
                            "iat": now, "exp": now + 3600, "sub": sub});
        let assertion = format!("{header}.{}.c2ln", base64url(claims.to_string().as_bytes()));
        let form = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
        let (status, _, body) = call(fake, "POST", "/token", None, &form);
        (status, body)
    }

    fn token(fake: &FakeGmail, sub: &str, scope: &str) -> String {
        let (status, body) = token_response(fake, sub, scope);
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A query value as `tam`'s `search_for` escapes it.
    fn escape(q: &str) -> String {
        q.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    fn search(list: &str, message_id: &str) -> String {
        format!("/gmail/v1/users/me/{list}?q={}", escape(&format!("rfc822msgid:{message_id}")))
    }

    fn mime(message_id: &str, subject: &str, reply_to: Option<&str>) -> String {
        let reply = reply_to.map(|r| format!("In-Reply-To: {r}\r\nReferences: {r}\r\n")).unwrap_or_default();
        format!(
            "From: \"Ana\" <ana@vendor.example>\r\nTo: ops@nw.example,\r\n cto@nw.example\r\nSubject: {subject}\r\n\
             Message-ID: {message_id}\r\n{reply}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
        )
    }

    fn create_body(raw: &str, thread: Option<&str>) -> String {
        let mut message = json!({"raw": base64url(raw.as_bytes())});
        if let Some(t) = thread {
            message["threadId"] = json!(t);
        }
        json!({"message": message}).to_string()
    }

    /// A draft as `tam` writes one: text and HTML in base64 lines, the HTML beside an inline
    /// PNG in a `multipart/related`.
    fn product_mime(message_id: &str, subject: &str, text: &str) -> String {
        format!(
            "From: \"Ana\" <ana@vendor.example>\r\nTo: ops@nw.example,\r\n cto@nw.example\r\nCc: boss@nw.example\r\n\
             Subject: {subject}\r\nMessage-ID: {message_id}\r\nX-TAM-Kind: review\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative;\r\n boundary=\"=_tam_1\"\r\n\r\n\
             --=_tam_1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
             --=_tam_1\r\nContent-Type: multipart/related;\r\n boundary=\"=_tam_r_1\";\r\n type=\"text/html\"\r\n\r\n\
             --=_tam_r_1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
             --=_tam_r_1\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <chart>\r\n\
             Content-Disposition: inline; filename=\"chart.png\"\r\n\r\n{}--=_tam_r_1--\r\n--=_tam_1--\r\n",
            base64_lines(text.replace('\n', "\r\n").as_bytes()),
            base64_lines(b"<p>Scores</p><img src=\"cid:chart\">"),
            base64_lines(b"\x89PNG\r\n\x1a\n"),
        )
    }

    /// The text of the first `text/plain` part of a `format=full` payload.
    fn plain_text(part: &Value) -> Option<String> {
        if part["mimeType"] == "text/plain" {
            let data = part["body"]["data"].as_str()?;
            assert_eq!(data.len() % 4, 0, "Gmail pads body.data");
            return Some(String::from_utf8(decode_base64(data)?).unwrap());
        }
        part["parts"].as_array()?.iter().find_map(plain_text)
    }

    /// A draft of `raw` created through the API: its id, its message's id and its thread.
    fn create_draft(fake: &FakeGmail, token: &str, raw: &str) -> (String, String, String) {
        let (status, _, v) = call(fake, "POST", "/gmail/v1/users/me/drafts", Some(token), &create_body(raw, None));
        assert_eq!(status, 200, "{v}");
        let field = |v: &Value| v.as_str().unwrap().to_owned();
        (field(&v["id"]), field(&v["message"]["id"]), field(&v["message"]["threadId"]))
    }

    const ANA: &str = "ana@vendor.example";

    #[test]
    fn tokens_are_issued_only_for_delegated_scopes() {
        let fake = FakeGmail::start();
        let (status, body) = token_response(&fake, ANA, SCOPE_COMPOSE);
        assert_eq!(status, 200);
        assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
        assert_eq!((body["expires_in"].clone(), body["token_type"].clone()), (json!(3599), json!("Bearer")));
        assert_ne!(token(&fake, ANA, SCOPE_COMPOSE), token(&fake, ANA, SCOPE_COMPOSE), "every token is new");

        let (status, body) = token_response(&fake, ANA, &format!("{SCOPE_COMPOSE} {SCOPE_READONLY}"));
        assert_eq!(status, 401);
        assert_eq!(body, json!({"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT}));

        fake.grant(&[SCOPE_READONLY]);
        assert_eq!(token_response(&fake, ANA, SCOPE_READONLY).0, 200);
        assert_eq!(token_response(&fake, ANA, SCOPE_COMPOSE).0, 401, "grant replaces the delegated scopes");
        let stats = fake.stats();
        assert_eq!((stats.tokens_issued, stats.tokens_refused, stats.routes["POST token"]), (4, 2, 6));

        let (status, _, body) = call(&fake, "POST", "/token", None, "grant_type=password&assertion=x");
        assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    }

    #[test]
    fn a_created_draft_is_found_by_its_message_id() {
        let fake = FakeGmail::start();
        let ana = token(&fake, ANA, SCOPE_COMPOSE);
        let id = "<d1c3@tam.local>";
        let (status, _, body) = call(&fake, "GET", &search("drafts", id), Some(&ana), "");
        assert_eq!((status, body), (200, json!({"resultSizeEstimate": 0})));

        let raw = mime(id, "=?UTF-8?B?Tm9ydGh3aW5k?= =?UTF-8?B?OiBvdXIgcGxhbg==?=", None);
        let (status, _, created) =
            call(&fake, "POST", "/gmail/v1/users/me/drafts", Some(&ana), &create_body(&raw, None));
        assert_eq!(status, 200, "{created}");
        assert!(created["id"].as_str().unwrap().starts_with("r-"));
        assert_eq!(created["message"]["labelIds"], json!(["DRAFT"]));
        assert_eq!(created["message"]["threadId"], created["message"]["id"], "a new thread");

        let (status, _, found) = call(&fake, "GET", &search("drafts", id), Some(&ana), "");
        assert_eq!(status, 200);
        assert_eq!(found["resultSizeEstimate"], 1);
        assert_eq!(found["drafts"][0]["id"], created["id"]);
        assert_eq!(found["drafts"][0]["message"]["id"], created["message"]["id"]);

        let drafts = fake.drafts("Ana@Vendor.example");
        assert_eq!(drafts.len(), 1);
        let d = &drafts[0];
        assert_eq!((d.message_id.as_str(), d.subject.as_deref()), (id, Some("Northwind: our plan")));
        assert_eq!(d.to.as_deref(), Some("ops@nw.example, cto@nw.example"), "unfolded");
        assert_eq!(d.raw, raw);
        assert!(fake.drafts("bo@vendor.example").is_empty() && fake.sent(ANA).is_empty());

        let path = format!("/gmail/v1/users/me/drafts/{}?format=metadata", created["id"].as_str().unwrap());
        let (status, _, got) = call(&fake, "GET", &path, Some(&ana), "");
        assert_eq!((status, got["message"]["id"].clone()), (200, created["message"]["id"].clone()));

        let other = token(&fake, "bo@vendor.example", SCOPE_COMPOSE);
        let (_, _, theirs) = call(&fake, "GET", &search("drafts", id), Some(&other), "");
        assert_eq!(theirs, json!({"resultSizeEstimate": 0}), "a mailbox is its user's");
        assert_eq!(call(&fake, "GET", &path, Some(&other), "").0, 404);
    }

    #[test]
    fn messages_cannot_be_listed_with_compose_alone() {
        let fake = FakeGmail::start();
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let id = "<m1@tam.local>";
        let raw = mime(id, "Northwind: we are on it", None);
        assert_eq!(call(&fake, "POST", "/gmail/v1/users/me/drafts", Some(&compose), &create_body(&raw, None)).0, 200);

        let (status, head, body) = call(&fake, "GET", &search("messages", id), Some(&compose), "");
        assert_eq!(status, 403);
        assert_eq!(body["error"]["message"], "Request had insufficient authentication scopes.");
        assert_eq!(body["error"]["errors"][0]["reason"], "insufficientPermissions");
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert!(head.contains("error=\"insufficient_scope\""), "{head}");
        assert_eq!(call(&fake, "GET", "/gmail/v1/users/me/messages/18d2c0f6b1a20001", Some(&compose), "").0, 403);
        assert_eq!(fake.stats().insufficient_scope, 2);

        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY]);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let (status, _, found) = call(&fake, "GET", &search("messages", id), Some(&reader), "");
        assert_eq!((status, found["resultSizeEstimate"].clone()), (200, json!(1)), "a draft's message counts");
        let m = found["messages"][0]["id"].as_str().unwrap();
        let path = format!("/gmail/v1/users/me/messages/{m}?format=metadata&metadataHeaders=Subject");
        let (status, _, message) = call(&fake, "GET", &path, Some(&reader), "");
        assert_eq!(status, 200);
        assert_eq!(message["payload"]["headers"], json!([{"name": "Subject", "value": "Northwind: we are on it"}]));
        assert_eq!(message["labelIds"], json!(["DRAFT"]));
    }

    #[test]
    fn a_message_joins_a_thread_only_when_headers_and_subject_agree() {
        let fake = FakeGmail::start();
        let token = token(&fake, ANA, SCOPE_COMPOSE);
        let create = |raw: &str, thread: Option<&str>| {
            let (status, _, v) =
                call(&fake, "POST", "/gmail/v1/users/me/drafts", Some(&token), &create_body(raw, thread));
            assert_eq!(status, 200, "{v}");
            v["message"]["threadId"].as_str().unwrap().to_owned()
        };
        let first = create(&mime("<a@tam.local>", "Northwind: we are on it", None), None);
        let joined = create(&mime("<b@tam.local>", "Re: Northwind: we are on it", Some("<a@tam.local>")), Some(&first));
        assert_eq!(joined, first);
        let other_subject = create(&mime("<c@tam.local>", "Northwind: our plan", Some("<a@tam.local>")), Some(&first));
        assert_ne!(other_subject, first, "Gmail threads on the subject too");
        let no_headers = create(&mime("<d@tam.local>", "Re: Northwind: we are on it", None), Some(&first));
        assert_ne!(no_headers, first);
        let unknown = create(&mime("<e@tam.local>", "x", None), Some("18d2c0f6b1a2ffff"));
        assert_ne!(unknown, "18d2c0f6b1a2ffff");
    }

    #[test]
    fn sending_needs_recipients_and_is_recorded() {
        let fake = FakeGmail::start();
        let token = token(&fake, "tam@vendor.example", SCOPE_SEND);
        let path = "/gmail/v1/users/me/messages/send";
        let raw = "From: tam@vendor.example\r\nTo: ana@vendor.example\r\nSubject: [tam] red\r\nMessage-ID: <s@tam.local>\r\n\r\nx";
        let (status, _, sent) =
            call(&fake, "POST", path, Some(&token), &json!({"raw": base64url(raw.as_bytes())}).to_string());
        assert_eq!(status, 200);
        assert_eq!(sent["labelIds"], json!(["SENT"]));
        let nobody = "From: tam@vendor.example\r\nSubject: x\r\n\r\nx";
        let (status, _, body) =
            call(&fake, "POST", path, Some(&token), &json!({"raw": base64url(nobody.as_bytes())}).to_string());
        assert_eq!((status, body["error"]["message"].as_str()), (400, Some("Recipient address required")));
        let stored = fake.sent("tam@vendor.example");
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].id.as_str(), stored[0].to.as_deref()), (sent["id"].as_str().unwrap(), Some(ANA)));
        assert_eq!(call(&fake, "POST", "/gmail/v1/users/me/drafts", Some(&token), &create_body(raw, None)).0, 403);
    }

    #[test]
    fn bad_calls_get_googles_errors() {
        let fake = FakeGmail::start();
        let token = token(&fake, ANA, SCOPE_COMPOSE);
        let drafts = "/gmail/v1/users/me/drafts";
        let (status, _, body) = call(&fake, "GET", drafts, Some("ya29.forged"), "");
        assert_eq!((status, body["error"]["errors"][0]["reason"].as_str()), (401, Some("authError")));
        assert_eq!(call(&fake, "GET", drafts, None, "").0, 401);
        let (status, _, body) = call(&fake, "POST", drafts, Some(&token), "{not json");
        assert_eq!(status, 400);
        assert!(body["error"]["message"].as_str().unwrap().starts_with("Invalid JSON payload received."), "{body}");
        let (status, _, body) = call(&fake, "POST", drafts, Some(&token), r#"{"message":{"raw":"no*base64"}}"#);
        assert_eq!(status, 400);
        assert!(body["error"]["message"].as_str().unwrap().contains("Base64 decoding failed"), "{body}");
        let (status, _, body) = call(&fake, "POST", drafts, Some(&token), r#"{"message":{}}"#);
        assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
        let (status, _, body) = call(&fake, "POST", drafts, Some(&token), r#"{"mesage":{}}"#);
        assert!(status == 400 && body["error"]["message"].as_str().unwrap().contains("Unknown name \"mesage\""));
        let (status, _, body) = call(&fake, "GET", "/gmail/v1/users/me/labels", Some(&token), "");
        assert_eq!((status, body["error"]["code"].clone()), (404, json!(404)));
        assert_eq!(call(&fake, "GET", "/gmail/v1/users/bo@vendor.example/drafts", Some(&token), "").0, 403);
        assert_eq!(call(&fake, "GET", "/gmail/v1/users/ana%40vendor.example/drafts", Some(&token), "").0, 200);

        fake.revoke_tokens();
        assert_eq!(call(&fake, "GET", drafts, Some(&token), "").0, 401);
    }

    #[test]
    fn injected_failures_and_lost_replies() {
        let fake = FakeGmail::start();
        let token = token(&fake, ANA, SCOPE_COMPOSE);
        let drafts = "/gmail/v1/users/me/drafts";
        fake.fail_next(
            503,
            r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#,
        );
        let (status, _, body) = call(&fake, "GET", drafts, Some(&token), "");
        assert_eq!((status, body["error"]["code"].clone()), (503, json!(503)));
        assert_eq!(call(&fake, "GET", drafts, Some(&token), "").0, 200, "only the next call fails");
        assert!(fake.drafts(ANA).is_empty(), "a failed call does nothing");

        fake.lose_reply_of_next_send();
        assert_eq!(call(&fake, "GET", drafts, Some(&token), "").0, 200, "reads are not sends");
        let raw = mime("<lost@tam.local>", "x", None);
        let (status, head, body) = call(&fake, "POST", drafts, Some(&token), &create_body(&raw, None));
        assert_eq!(status, 502);
        assert!(head.contains("text/html") && body.as_str().unwrap().contains("502."), "{body}");
        assert_eq!(fake.drafts(ANA).len(), 1, "the draft was created all the same");
        let (_, _, found) = call(&fake, "GET", &search("drafts", "<lost@tam.local>"), Some(&token), "");
        assert_eq!(found["resultSizeEstimate"], 1);

        fake.lose_next_reply();
        assert_eq!(call(&fake, "GET", drafts, Some(&token), "").0, 502);
        assert_eq!(call(&fake, "GET", drafts, Some(&token), "").0, 200);
        fake.fail_next_token(503, "{}");
        assert_eq!(token_response(&fake, ANA, SCOPE_COMPOSE).0, 503);
    }

    #[test]
    fn each_user_has_a_quota_of_units_per_second() {
        let fake = FakeGmail::start();
        fake.set_user_units_per_second(25);
        let ana = token(&fake, ANA, SCOPE_COMPOSE);
        let bo = token(&fake, "bo@vendor.example", SCOPE_COMPOSE);
        let create = |token: &str, n: u32| {
            let raw = mime(&format!("<q{n}@tam.local>"), "x", None);
            call(&fake, "POST", "/gmail/v1/users/me/drafts", Some(token), &create_body(&raw, None))
        };
        assert_eq!(create(&ana, 1).0, 200);
        assert_eq!(create(&ana, 2).0, 200);
        let (status, head, body) = create(&ana, 3);
        assert_eq!(status, 429, "10 + 10 + 10 units > 25");
        assert_eq!(body["error"]["errors"][0]["reason"], "userRateLimitExceeded");
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
        assert!(!head.contains("retry-after"), "{head}");
        assert_eq!(call(&fake, "GET", "/gmail/v1/users/me/drafts", Some(&ana), "").0, 200, "5 more units fit");
        assert_eq!(create(&bo, 4).0, 200, "the quota is per user");
        assert_eq!(fake.drafts(ANA).len(), 2);
        let stats = fake.stats();
        assert_eq!((stats.rate_limited, stats.peak_user_units_per_second), (1, 25));
        assert_eq!((stats.routes["POST drafts"], stats.routes["GET drafts"]), (4, 1));

        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(create(&ana, 5).0, 200, "the window moves");
    }

    #[test]
    fn concurrent_requests_overlap_under_latency() {
        let fake = FakeGmail::start();
        let token = token(&fake, ANA, SCOPE_COMPOSE);
        fake.set_latency(Duration::from_millis(100));
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..10 {
                s.spawn(|| assert_eq!(call(&fake, "GET", "/gmail/v1/users/me/drafts", Some(&token), "").0, 200));
            }
        });
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(100) && elapsed < Duration::from_millis(800), "{elapsed:?}");
        assert!(fake.stats().peak_in_flight >= 5, "{:?}", fake.stats());
    }

    #[test]
    fn a_connection_is_kept_alive() {
        let fake = FakeGmail::start();
        let token = token(&fake, ANA, SCOPE_COMPOSE);
        let mut stream = TcpStream::connect(fake.addr).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..2 {
            stream.write_all(request("GET", "/gmail/v1/users/me/drafts", Some(&token), "").as_bytes()).unwrap();
            assert_eq!(read_response(&mut reader).0, 200);
        }
    }

    #[test]
    fn a_draft_sent_unchanged_becomes_a_new_sent_message_in_its_thread() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let text = "Hi Ops,\nScores: 90 & 50 <ok>, \"fine\" isn't it?\nThe chart shows the last twelve weeks.\n";
        let raw = product_mime("<p1@tam.local>", "Northwind: our plan", text);
        let (draft, first, thread) = create_draft(&fake, &compose, &raw);

        let (status, _, full) =
            call(&fake, "GET", &format!("/gmail/v1/users/me/messages/{first}?format=full"), Some(&reader), "");
        assert_eq!(status, 200, "{full}");
        let payload = &full["payload"];
        assert_eq!((&payload["partId"], &payload["mimeType"]), (&json!(""), &json!("multipart/alternative")));
        assert_eq!(payload["body"], json!({"size": 0}));
        assert_eq!((&payload["parts"][0]["partId"], &payload["parts"][1]["partId"]), (&json!("0"), &json!("1")));
        let expected = text.replace('\n', "\r\n");
        assert_eq!(plain_text(payload).as_deref(), Some(expected.as_str()));
        let image = &payload["parts"][1]["parts"][1];
        assert_eq!((image["partId"].as_str(), image["filename"].as_str()), (Some("1.1"), Some("chart.png")));
        assert_eq!(image["body"]["size"], 8);
        assert!(image["body"]["attachmentId"].is_string() && image["body"].get("data").is_none(), "{image}");
        assert_eq!(
            full["snippet"],
            "Hi Ops, Scores: 90 &amp; 50 &lt;ok&gt;, &quot;fine&quot; isn&#39;t it? The chart shows the last twelve \
             weeks."
        );

        let sent = fake.user_sends_draft(ANA, &draft, None, None);
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/drafts/{draft}"), Some(&compose), "").0, 404);
        let (_, _, drafts) = call(&fake, "GET", "/gmail/v1/users/me/drafts", Some(&compose), "");
        assert_eq!(drafts, json!({"resultSizeEstimate": 0}));
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/messages/{first}"), Some(&reader), "").0, 404);
        let (_, _, found) = call(&fake, "GET", &search("messages", "<p1@tam.local>"), Some(&reader), "");
        assert_eq!(found, json!({"resultSizeEstimate": 0}), "Gmail gives the sent message a Message-ID of its own");

        assert_eq!(sent.label_ids, ["SENT"]);
        assert_eq!(sent.thread_id, thread);
        assert_ne!(sent.id, first);
        assert!(sent.message_id != "<p1@tam.local>" && sent.message_id.ends_with("@mail.gmail.com>"), "{sent:?}");
        assert_eq!(sent.to.as_deref(), Some("ops@nw.example, cto@nw.example"));
        assert_eq!(sent.cc.as_deref(), Some("boss@nw.example"));
        assert_eq!(sent.subject.as_deref(), Some("Northwind: our plan"));
        assert_eq!(sent.header("X-TAM-Kind"), None, "the web UI writes a message of its own");
        assert!(fake.drafts(ANA).is_empty());
        assert_eq!(fake.sent(ANA), std::slice::from_ref(&sent));

        let (status, _, got) = call(&fake, "GET", &format!("/gmail/v1/users/me/threads/{thread}"), Some(&reader), "");
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["id"], thread.as_str());
        let messages = got["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "the draft left its thread");
        assert_eq!((messages[0]["id"].as_str(), &messages[0]["labelIds"]), (Some(sent.id.as_str()), &json!(["SENT"])));
        assert_eq!(
            plain_text(&messages[0]["payload"]).as_deref(),
            Some("\r\nScores\r\n"),
            "Gmail's editor sends the text of the HTML it shows"
        );
        let path = format!("/gmail/v1/users/me/threads/{thread}?format=metadata&metadataHeaders=Message-ID");
        let (_, _, meta) = call(&fake, "GET", &path, Some(&reader), "");
        let header = json!([{"name": "Message-ID", "value": sent.message_id}]);
        assert_eq!(meta["messages"][0]["payload"]["headers"], header);
        assert_eq!(fake.stats().routes["GET threads/{id}"], 2);
    }

    #[test]
    fn a_draft_sent_with_a_new_subject_starts_a_thread() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let raw = product_mime("<p2@tam.local>", "Northwind: x", "Hello\n");
        let (draft, _, thread) = create_draft(&fake, &compose, &raw);

        let sent = fake.user_sends_draft(ANA, &draft, Some("Hi all,\nnew plan"), Some("Northwind: the new plan ✓"));
        assert_ne!(sent.thread_id, thread);
        assert_eq!(sent.thread_id, sent.id, "a new thread is named after its first message");
        assert_eq!(sent.subject.as_deref(), Some("Northwind: the new plan ✓"));
        assert_eq!(sent.to.as_deref(), Some("ops@nw.example, cto@nw.example"));
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/threads/{thread}"), Some(&reader), "").0, 404);
        let path = format!("/gmail/v1/users/me/threads/{}", sent.thread_id);
        let (status, _, got) = call(&fake, "GET", &path, Some(&reader), "");
        assert_eq!(status, 200, "{got}");
        assert_eq!(plain_text(&got["messages"][0]["payload"]).as_deref(), Some("Hi all,\r\nnew plan"));
        assert_eq!(got["messages"][0]["snippet"], "Hi all, new plan");
    }

    #[test]
    fn an_edited_draft_keeps_its_id_and_gets_a_new_message() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let raw = product_mime("<p3@tam.local>", "Northwind", "Hi\n");
        let (draft, first, thread) = create_draft(&fake, &compose, &raw);

        let edited = fake.user_edits_draft(ANA, &draft, "Hi Ops,\nrewritten by Ana");
        assert_eq!(edited.draft_id.as_deref(), Some(draft.as_str()));
        assert_ne!(edited.id, first);
        assert_eq!((edited.thread_id.as_str(), edited.message_id.as_str()), (thread.as_str(), "<p3@tam.local>"));
        assert_eq!(edited.header("X-TAM-Kind"), Some("review"), "the header fields stay");
        let path = format!("/gmail/v1/users/me/drafts/{draft}?format=full");
        let (status, _, got) = call(&fake, "GET", &path, Some(&compose), "");
        assert_eq!(status, 200, "{got}");
        assert_eq!((&got["message"]["id"], &got["message"]["labelIds"]), (&json!(edited.id), &json!(["DRAFT"])));
        assert_eq!(plain_text(&got["message"]["payload"]).as_deref(), Some("Hi Ops,\r\nrewritten by Ana"));
        let (_, _, found) = call(&fake, "GET", &search("drafts", "<p3@tam.local>"), Some(&compose), "");
        assert_eq!(found["resultSizeEstimate"], 1);
        let listed = &found["drafts"][0];
        assert_eq!((&listed["id"], &listed["message"]["id"]), (&json!(draft), &json!(edited.id)));
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/messages/{first}"), Some(&reader), "").0, 404);
        let (_, _, got) = call(&fake, "GET", &format!("/gmail/v1/users/me/threads/{thread}"), Some(&reader), "");
        assert_eq!(got["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(fake.drafts(ANA), [edited]);
    }

    #[test]
    fn a_deleted_draft_and_its_thread_are_gone() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let raw = product_mime("<p4@tam.local>", "Northwind", "Hi\n");
        let (draft, first, thread) = create_draft(&fake, &compose, &raw);

        fake.user_deletes_draft(ANA, &draft);
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/drafts/{draft}"), Some(&compose), "").0, 404);
        let (_, _, drafts) = call(&fake, "GET", "/gmail/v1/users/me/drafts", Some(&compose), "");
        assert_eq!(drafts, json!({"resultSizeEstimate": 0}));
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/threads/{thread}"), Some(&reader), "").0, 404);
        assert_eq!(call(&fake, "GET", &format!("/gmail/v1/users/me/messages/{first}"), Some(&reader), "").0, 404);
        let (_, _, all) = call(&fake, "GET", "/gmail/v1/users/me/messages", Some(&reader), "");
        assert_eq!(all, json!({"resultSizeEstimate": 0}));
        assert!(fake.messages(ANA).is_empty() && fake.drafts(ANA).is_empty());
    }

    #[test]
    fn threads_are_read_with_the_scopes_and_quota_of_messages() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_METADATA]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let metadata = token(&fake, ANA, SCOPE_METADATA);
        let raw = product_mime("<p5@tam.local>", "Northwind: our plan", "Hi\n");
        let (_, _, thread) = create_draft(&fake, &compose, &raw);
        let path = format!("/gmail/v1/users/me/threads/{thread}");

        let (status, head, body) = call(&fake, "GET", &path, Some(&compose), "");
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["errors"][0]["reason"], "insufficientPermissions");
        assert_eq!(body["error"]["details"][0]["metadata"]["method"], "caribou.api.proto.MailboxService.GetThread");
        assert!(head.contains("error=\"insufficient_scope\""), "{head}");
        let (status, _, body) = call(&fake, "GET", &path, Some(&metadata), "");
        assert_eq!(status, 403);
        assert_eq!(body["error"]["message"], "Metadata scope doesn't allow format FULL");
        let headers = format!("{path}?format=metadata&metadataHeaders=Subject");
        let (status, _, got) = call(&fake, "GET", &headers, Some(&metadata), "");
        assert_eq!(status, 200, "{got}");
        let subject = json!([{"name": "Subject", "value": "Northwind: our plan"}]);
        assert_eq!(got["messages"][0]["payload"]["headers"], subject);
        assert_eq!(call(&fake, "GET", &format!("{path}?format=raw"), Some(&metadata), "").0, 400, "no raw thread");
        assert_eq!(call(&fake, "GET", "/gmail/v1/users/me/threads/xyz?format=minimal", Some(&metadata), "").0, 400);
        let unknown = "/gmail/v1/users/me/threads/18d2c0f6b1a2ffff?format=minimal";
        assert_eq!(call(&fake, "GET", unknown, Some(&metadata), "").0, 404);
        let stats = fake.stats();
        assert_eq!((stats.insufficient_scope, stats.routes["GET threads/{id}"]), (1, 6));

        std::thread::sleep(Duration::from_millis(1100));
        fake.set_user_units_per_second(15);
        let minimal = format!("{path}?format=minimal");
        assert_eq!(call(&fake, "GET", &minimal, Some(&metadata), "").0, 200);
        assert_eq!(call(&fake, "GET", &minimal, Some(&metadata), "").0, 429, "threads.get costs 10 units");
    }

    #[test]
    fn messages_are_searched_by_folder_recipient_and_date() {
        let fake = FakeGmail::start();
        fake.grant(&[SCOPE_COMPOSE, SCOPE_READONLY, SCOPE_METADATA]);
        let compose = token(&fake, ANA, SCOPE_COMPOSE);
        let reader = token(&fake, ANA, SCOPE_READONLY);
        let metadata = token(&fake, ANA, SCOPE_METADATA);
        let (to_send, _, _) = create_draft(&fake, &compose, &product_mime("<s1@tam.local>", "Northwind", "Hi\n"));
        let other = mime("<s2@tam.local>", "Globex", None).replace("ops@nw.example,\r\n cto@nw", "it@globex");
        let (kept, kept_message, _) = create_draft(&fake, &compose, &other);
        let sent = fake.user_sends_draft(ANA, &to_send, None, None);
        let since = jiff::Timestamp::now().as_second() - 60;
        let list =
            |q: &str, t: &str| call(&fake, "GET", &format!("/gmail/v1/users/me/messages?q={}", escape(q)), Some(t), "");

        let (status, _, found) = list(&format!("in:sent to:CTO@nw.example after:{since}"), &reader);
        assert_eq!(status, 200, "{found}");
        assert_eq!((&found["resultSizeEstimate"], &found["messages"][0]["id"]), (&json!(1), &json!(sent.id)));
        assert_eq!(list("in:sent to:it@globex.example", &reader).2["resultSizeEstimate"], 0);
        assert_eq!(list(&format!("in:sent before:{since}"), &reader).2["resultSizeEstimate"], 0);
        assert_eq!(list("in:sent after:2020/01/31", &reader).2["resultSizeEstimate"], 1);
        let (_, _, drafts) = list("in:drafts to:it@globex.example", &reader);
        assert_eq!((&drafts["resultSizeEstimate"], &drafts["messages"][0]["id"]), (&json!(1), &json!(kept_message)));
        assert_eq!(fake.drafts(ANA)[0].draft_id.as_deref(), Some(kept.as_str()));
        assert_eq!(list("from:ana@vendor.example", &reader).0, 400, "a search the fake cannot read is refused");
        assert_eq!(list("after:2020/13/01", &reader).0, 400);

        let labelled =
            |labels: &str, t: &str| call(&fake, "GET", &format!("/gmail/v1/users/me/messages?{labels}"), Some(t), "");
        let (status, _, found) = labelled("labelIds=SENT", &metadata);
        assert_eq!(status, 200, "{found}");
        assert_eq!((&found["resultSizeEstimate"], &found["messages"][0]["id"]), (&json!(1), &json!(sent.id)));
        assert_eq!(labelled("labelIds=SENT&labelIds=DRAFT", &reader).2, json!({"resultSizeEstimate": 0}));
        assert_eq!(list("in:sent", &metadata).0, 403, "the metadata scope cannot search");
    }

    #[test]
    fn bodies_are_decoded_from_their_transfer_encodings() {
        assert_eq!(decode_quoted_printable("caf=C3=A9 =\r\nbar  \r\nx=3D1"), "café bar\r\nx=1".as_bytes());
        let raw = "Subject: s\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n";
        let entity = parse_entity(raw, 0);
        assert_eq!((entity.mime_type.as_str(), entity.text()), ("text/plain", "café\r\n".to_owned()));
        assert!(entity.parts.is_none());
        assert_eq!(search_time("2026/3/29"), Some(1_774_742_400_000));
        assert_eq!(search_time("1774742400"), Some(1_774_742_400_000));
        assert_eq!((search_time("2026-03-29"), search_time("2026/02/30")), (None, None));
        assert_eq!(header_field("Subject", "plain"), "Subject: plain\r\n");
        assert_eq!(parse_headers(&header_field("Subject", "Chloé déploie ✓"))[0].1, "Chloé déploie ✓");
    }

    #[test]
    fn headers_are_decoded_as_gmail_shows_them() {
        let split = "=?UTF-8?B?Q2hsb8Op?=\r\n =?UTF-8?Q?_d=C3=A9ploie?=";
        assert_eq!(parse_headers(&format!("Subject: {split}\r\n\r\n"))[0].1, "Chloé déploie");
        assert_eq!(decode_base64("YWJj"), Some(b"abc".to_vec()));
        assert_eq!(decode_base64("YWI="), Some(b"ab".to_vec()));
        assert_eq!(decode_base64("-_-_"), decode_base64("+/+/"));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(String::from_utf8(decode_base64(&base64url(b"hello?>")).unwrap()).unwrap(), "hello?>");
        assert_eq!(thread_subject(Some("RE: Fwd:  Hello ")), "hello");
    }
}
