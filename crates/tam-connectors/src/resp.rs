//! A minimal RESP2 client: just what the event bus needs (commands in, replies out, one
//! connection). Written here rather than pulled in because the bus uses six commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Int(i64),
    /// `$n` bulk string, `None` for `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` array, `None` for `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text, for bulk and status replies.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The items of an array reply (empty for a null array).
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum RespError {
    /// The connection failed or broke.
    #[error("redis connection: {0}")]
    Io(#[from] std::io::Error),
    /// Redis answered with an error.
    #[error("redis: {0}")]
    Server(String),
    /// The reply was not RESP.
    #[error("redis protocol: {0}")]
    Protocol(String),
    /// The URL is not `redis://[user:password@]host:port[/db]` (shown without its password).
    #[error("bad redis URL {0:?} (expected redis://[user:password@]host:port[/db])")]
    Url(String),
}

/// `url` with the password of its user information replaced, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `%XX` escapes decoded (URL user information may escape `@`, `:` or `/`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `redis://host:port[/db]`.
    pub fn open(url: &str, timeout: Duration) -> Result<Connection, RespError> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| RespError::Url(redacted(url)))?;
        let (authority, db) = rest.split_once('/').map_or((rest, None), |(a, d)| (a, Some(d)));
        let (userinfo, addr) = authority.rsplit_once('@').map_or((None, authority), |(u, a)| (Some(u), a));
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut c = Connection { reader: BufReader::new(stream) };
        // `:password@` is the server's password; `user:password@` an ACL user's.
        if let Some((user, password)) = userinfo.and_then(|u| u.split_once(':')) {
            let password = percent_decode(password);
            let auth = if user.is_empty() {
                c.cmd(&["AUTH", password.as_str()])
            } else {
                c.cmd(&["AUTH", percent_decode(user).as_str(), password.as_str()])
            };
            auth.map_err(|e| match e {
                RespError::Server(m) => RespError::Server(format!(
                    "{m} (AUTH with the user and password of the [event_bus] redis_url was refused)"
                )),
                other => other,
            })?;
        }
        if let Some(db) = db.filter(|d| !d.is_empty()) {
            c.cmd(&["SELECT", db])?;
        }
        Ok(c)
    }

    /// Sends one command and reads its reply; a Redis error reply is an `Err`.
    pub fn cmd<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Result<Reply, RespError> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out)?;
        match self.read()? {
            Reply::Error(e) => Err(RespError::Server(e)),
            reply => Ok(reply),
        }
    }

    fn line(&mut self) -> Result<String, RespError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(RespError::Protocol("connection closed".to_owned()));
        }
        Ok(line.trim_end_matches("\r\n").to_owned())
    }

    fn read(&mut self) -> Result<Reply, RespError> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || rest.parse::<i64>().map_err(|_| RespError::Protocol(format!("bad length in {line:?}")));
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => Ok(Reply::Int(number()?)),
            "$" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0; usize::try_from(n).unwrap_or(0) + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(buf.len() - 2);
                Ok(Reply::Bulk(Some(buf)))
            }
            "*" => {
                let n = number()?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                (0..n).map(|_| self.read()).collect::<Result<Vec<_>, _>>().map(|v| Reply::Array(Some(v)))
            }
            _ => Err(RespError::Protocol(format!("unexpected reply {line:?}"))),
        }
    }
}
