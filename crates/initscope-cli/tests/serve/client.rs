//! A server under test and a small HTTP/1.1 client. The client is written out here (not a
//! crate) because the tests forge what real clients never send: a foreign Host header, a
//! foreign Origin, no cookie.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `initscope serve --port 0` with its URL parsed from the first line it prints.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    pub token: String,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_initscope"))
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server prints its URL");
        let url = line
            .trim()
            .strip_prefix("initscope serve: http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        let (host, token) = url.split_once("/?token=").expect("a token in the URL");
        Server {
            child,
            host: host.to_string(),
            token: token.to_string(),
        }
    }

    /// A request with the bearer token; the JSON body of the answer (Null when not JSON).
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        let text = body.map(|b| b.to_string());
        let r = request(
            &self.host,
            method,
            path,
            &[("Authorization", &auth)],
            text.as_deref(),
        );
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    /// Creates a session with `settings`; returns its id.
    pub fn session(&self, settings: Value) -> String {
        let (status, v) = self.api(
            "POST",
            "/api/sessions",
            Some(&serde_json::json!({ "settings": settings })),
        );
        assert_eq!(status, 200, "{v}");
        v["id"].as_str().expect("an id").to_string()
    }

    /// Creates a session with `settings` that must be refused (400); returns the error line.
    pub fn refused(&self, settings: Value) -> String {
        let (status, v) = self.api(
            "POST",
            "/api/sessions",
            Some(&serde_json::json!({ "settings": settings })),
        );
        assert_eq!(status, 400, "{settings}: {v}");
        v["error"].as_str().expect("an error line").to_string()
    }

    pub fn control(&self, id: &str, body: Value) -> Value {
        let (status, v) = self.api("POST", &format!("/api/sessions/{id}/control"), Some(&body));
        assert_eq!(status, 200, "{v}");
        v
    }

    pub fn events(&self, id: &str) -> Events {
        Events::open(self, id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn write_request(
    stream: &mut TcpStream,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req += &format!("Host: {host}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "Connection: close\r\n";
    if let Some(b) = body {
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        );
    }
    req += "\r\n";
    req += body.unwrap_or_default();
    stream.write_all(req.as_bytes()).expect("request sent");
}

/// Status line and headers.
fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (status, headers)
}

/// One chunk of a chunked body (None at the end).
fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    let mut buf = vec![0; size + 2];
    r.read_exact(&mut buf).ok()?;
    buf.truncate(size);
    (size > 0).then_some(buf)
}

/// One request on a fresh connection, the whole answer read.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    let mut stream = TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    write_request(&mut stream, host, method, path, headers, body);
    let mut r = BufReader::new(stream);
    let (status, headers) = read_head(&mut r);
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        while let Some(c) = read_chunk(&mut r) {
            body.extend(c);
        }
    } else {
        r.read_to_end(&mut body).expect("body");
    }
    Response {
        status,
        headers,
        body,
    }
}

/// An open event stream of a session.
pub struct Events {
    reader: BufReader<TcpStream>,
    buf: String,
}

impl Events {
    fn open(server: &Server, id: &str) -> Events {
        let mut stream = TcpStream::connect(&server.host).expect("connect");
        let auth = format!("Bearer {}", server.token);
        write_request(
            &mut stream,
            &server.host,
            "GET",
            &format!("/api/sessions/{id}/events"),
            &[("Authorization", &auth)],
            None,
        );
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, _) = read_head(&mut reader);
        assert_eq!(status, 200, "event stream refused");
        Events {
            reader,
            buf: String::new(),
        }
    }

    /// The next named event and its JSON (comments and keep-alives skipped).
    pub fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
                        event = e.to_string();
                    } else if let Some(d) =
                        line.strip_prefix("data: ").or(line.strip_prefix("data:"))
                    {
                        data += d;
                    }
                }
                if !event.is_empty() {
                    return (
                        event,
                        serde_json::from_str(&data).expect("event data is JSON"),
                    );
                }
                continue;
            }
            let chunk = read_chunk(&mut self.reader).expect("the stream stays open");
            self.buf += &String::from_utf8_lossy(&chunk);
        }
    }

    /// Events until `pick` returns something, within `limit`.
    pub fn until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&str, &Value) -> Option<T>,
    ) -> T {
        let t = Instant::now();
        loop {
            assert!(t.elapsed() < limit, "no matching event within {limit:?}");
            let (e, v) = self.next();
            if let Some(x) = pick(&e, &v) {
                return x;
            }
        }
    }
}
