//! tam-testkit: test support only (a dev-dependency). A local HTTP/1.1 server that answers
//! from a script, so tests can play any external service from its recorded wire format:
//! successes, errors, rate limits, garbled bodies, slow answers. Each connection gets the next
//! scripted answer and its request is recorded.
//!
//! It must never be a normal dependency of a shipping crate.

#![allow(clippy::unwrap_used, reason = "a fake that cannot serve should fail the test loudly")]

pub mod gmail;
mod http;
pub mod kayako;
pub mod notion;
pub mod postgres;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// Response body.
    pub body: String,
    /// How long to wait before answering (to provoke timeouts).
    pub delay: Duration,
}

/// Where an answer's body repeats the request it answers (see [`Answer::echo`]).
pub const ECHO: &str = "{request}";

/// The request line and every header, escaped to sit inside a JSON string: what a careless
/// server puts in its error messages.
fn echo(raw: &http::Raw) -> String {
    let mut text = format!("{} {}", raw.method, raw.target);
    let mut headers: Vec<_> = raw.headers.iter().collect();
    headers.sort();
    for (k, v) in headers {
        text.push_str(&format!("\n{k}: {v}"));
    }
    let quoted = serde_json::Value::String(text).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

impl Answer {
    /// An answer whose body is `template` with [`ECHO`] replaced by the request it answers
    /// (method, path with query, headers), JSON-escaped: a server that echoes credentials.
    pub fn echo(status: u16, template: &str) -> Answer {
        Answer::json(status, template)
    }

    /// A JSON answer with `status`.
    pub fn json(status: u16, body: &str) -> Answer {
        Answer { status, headers: Vec::new(), body: body.to_owned(), delay: Duration::ZERO }
    }
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

/// A running fake.
pub struct Fake {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Every request so far.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fake {
    /// Serves `script`, one answer per connection, one connection at a time, then stops.
    pub fn start(script: Vec<Answer>) -> Fake {
        Fake::serve(script, false)
    }

    /// [`Fake::start`] answering every connection on a thread of its own, as a real server
    /// does: [`Fake::most_at_once`] then tells how many requests a client had in flight.
    pub fn start_parallel(script: Vec<Answer>) -> Fake {
        Fake::serve(script, true)
    }

    /// The most requests that were being answered at once.
    pub fn most_at_once(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn serve(script: Vec<Answer>, parallel: bool) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (log, peak) = (Arc::clone(&seen), Arc::clone(&most));
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::spawn(move || {
            for answer in script {
                let Ok((stream, _)) = listener.accept() else { return };
                let (log, peak, in_flight) = (Arc::clone(&log), Arc::clone(&peak), Arc::clone(&in_flight));
                let answer_one = move || answer_connection(stream, &answer, &log, &peak, &in_flight);
                if parallel {
                    std::thread::spawn(answer_one);
                } else {
                    answer_one();
                }
            }
        });
        Fake { url, seen, most }
    }
}

/// Reads one request from `stream`, records it, waits the answer's delay and answers.
fn answer_connection(
    stream: TcpStream,
    answer: &Answer,
    log: &Mutex<Vec<Seen>>,
    most: &std::sync::atomic::AtomicUsize,
    in_flight: &std::sync::atomic::AtomicUsize,
) {
    use std::sync::atomic::Ordering::SeqCst;
    let mut reader = BufReader::new(stream);
    let Some(raw) = http::read(&mut reader) else { return };
    most.fetch_max(in_flight.fetch_add(1, SeqCst) + 1, SeqCst);
    let echoed = echo(&raw);
    log.lock().unwrap().push(Seen {
        path: raw.target,
        headers: raw.headers.into_iter().collect(),
        body: String::from_utf8(raw.body).unwrap(),
    });
    std::thread::sleep(answer.delay);
    // Out of flight before the answer goes out: a client that waits for it to send its next
    // request must never find this one still counted.
    in_flight.fetch_sub(1, SeqCst);
    let body = answer.body.replace(ECHO, &echoed);
    let mut stream = reader.into_inner();
    let mut response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        body.len()
    );
    for (k, v) in &answer.headers {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let _ = stream.write_all(response.as_bytes());
}

/// A throw-away `redis-server` on a free port, killed when dropped. Tests that need Redis use
/// a real one: `scripts/test` installs it.
pub struct RedisServer {
    child: std::process::Child,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections. A free port can be taken by another
    /// test's server between choosing it and binding it; then this server exits and the port
    /// answers with someone else's process, so the answer's `process_id` is checked and another
    /// port tried.
    pub fn start() -> RedisServer {
        RedisServer::start_requiring(None)
    }

    /// One that refuses every command until `AUTH password` (`requirepass`). Its `url` carries
    /// no password: tests write the URL they mean to test.
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::start_requiring(Some(password))
    }

    fn start_requiring(password: Option<&str>) -> RedisServer {
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut args = vec!["--port".to_owned(), port.to_string()];
            args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(str::to_owned));
            if let Some(password) = password {
                args.extend(["--requirepass".to_owned(), password.to_owned()]);
            }
            let mut child = std::process::Command::new("redis-server")
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/test installs it)");
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if answering_pid(port, password) == Some(child.id()) {
                    return RedisServer { child, url: format!("redis://127.0.0.1:{port}") };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start on any of 10 ports");
    }
}

/// The `process_id` of the Redis answering on `port`, if one does.
fn answering_pid(port: u16, password: Option<&str>) -> Option<u32> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    if let Some(password) = password {
        stream.write_all(format!("AUTH {password}\r\n").as_bytes()).ok()?;
    }
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = String::new();
    let mut buf = [0u8; 4096];
    while !reply.contains("process_id:") || !reply[reply.find("process_id:")?..].contains('\n') {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let line = &reply[reply.find("process_id:")? + "process_id:".len()..];
    line.lines().next()?.trim().parse().ok()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes base64 in either alphabet (`+/` or the URL-safe `-_`), ignoring padding and line
/// breaks: tests read back what `tam` encoded (MIME parts, Gmail `raw`, JWT segments).
pub fn unbase64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, c)| n | (u32::from(value(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
