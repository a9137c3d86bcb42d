//! One keep-alive HTTP/1.1 connection, written by hand, for the load generators.
//!
//! On this shared 2-core machine the load generator's own work is taken from what it measures.
//! `reqwest` costs a client stack, a pool and a connection task per request path; at 256
//! connections its bare-HTTP rate swung between 29k and 80k req/s from run to run with the same
//! binary (`infer-bench`), so the ceiling meant little. This writes one request per write and
//! reads one answer by its `Content-Length` (the API and the bare handlers always send one), on
//! a connection opened at the first request and opened again after a failure.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A `http://host:port` base the connection speaks to.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`, to connect to and to send as `Host`.
    pub host: String,
}

impl Target {
    /// Parses `http://host:port[/...]`; anything else (https, no host) is an error.
    pub fn parse(base: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(base)?;
        match (url.scheme(), url.host_str(), url.port_or_known_default()) {
            ("http", Some(h), Some(p)) => Ok(Target {
                host: format!("{h}:{p}"),
            }),
            _ => anyhow::bail!("the load generator speaks plain HTTP to host:port, not {base}"),
        }
    }
}

/// An HTTP/1.1 answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One connection to a [`Target`]; requests go one at a time.
#[derive(Debug)]
pub struct Connection {
    target: Target,
    stream: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
    line: String,
}

impl Connection {
    /// A connection that opens at its first request.
    pub fn new(target: Target) -> Self {
        Connection {
            target,
            stream: None,
            request: Vec::with_capacity(512),
            line: String::new(),
        }
    }

    /// `POST {path}` with a JSON body and extra header lines (each ending in `\r\n`). A failure
    /// closes the connection; the next request opens a new one.
    pub async fn post_json(
        &mut self,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> std::io::Result<Answer> {
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                self.target.host,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body);
        let answer = self.exchange().await;
        if answer.is_err() {
            self.stream = None;
        }
        answer
    }

    /// Drops the connection (after a request given up on mid-answer, whose bytes may still
    /// come); the next request opens a new one.
    pub fn close(&mut self) {
        self.stream = None;
    }

    async fn exchange(&mut self) -> std::io::Result<Answer> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.target.host).await?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let Some(s) = self.stream.as_mut() else {
            return Err(std::io::ErrorKind::NotConnected.into());
        };
        s.get_mut().write_all(&self.request).await?;
        read_answer(s, &mut self.line).await
    }
}

/// An HTTP/1.1 answer: its status and body, by Content-Length (a chunked or unbounded answer
/// is an error rather than a guess).
async fn read_answer(s: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    line.clear();
    if s.read_line(line).await? == 0 {
        return Err(bad("closed before the answer"));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    loop {
        line.clear();
        if s.read_line(line).await? == 0 {
            return Err(bad("closed mid-answer"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse().map_err(|_| bad("content-length"))?);
            }
        }
    }
    let length: usize = length.ok_or_else(|| bad("an answer without Content-Length"))?;
    let mut body = vec![0; length];
    s.read_exact(&mut body).await?;
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn only_plain_http_to_a_host_and_port_is_a_target() {
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/x").unwrap().host,
            "127.0.0.1:8080"
        );
        for base in ["https://127.0.0.1:8080", "not a url", "http://"] {
            assert!(Target::parse(base).is_err(), "{base}");
        }
    }

    /// A server that answers each request on a connection with `answers`, in turn.
    async fn server(answers: Vec<&'static str>) -> Target {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut s = BufReader::new(s);
            for a in answers {
                // Read one request: headers, then the body by its length.
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    s.read_line(&mut line).await.unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                s.read_exact(&mut body).await.unwrap();
                s.get_mut().write_all(a.as_bytes()).await.unwrap();
            }
        });
        Target { host }
    }

    #[tokio::test]
    async fn answers_are_read_by_length_on_one_kept_connection() {
        let t = server(vec![
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 5\r\n\r\nslow!",
        ])
        .await;
        let mut c = Connection::new(t);
        let a = c.post_json("/buy", "", b"{\"a\":1}").await.unwrap();
        assert_eq!((a.status, &a.body[..]), (202, &b"{}"[..]));
        let a = c.post_json("/buy", "X: y\r\n", b"{}").await.unwrap();
        assert_eq!((a.status, &a.body[..]), (429, &b"slow!"[..]));
    }

    #[tokio::test]
    async fn an_answer_without_a_length_is_an_error_and_the_connection_is_dropped() {
        let t = server(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ])
        .await;
        let mut c = Connection::new(t);
        assert!(c.post_json("/infer", "", b"{}").await.is_err());
        assert!(c.stream.is_none());
    }
}
