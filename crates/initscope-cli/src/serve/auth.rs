//! Who may use the server: a request must name this server in its Host header (against DNS
//! rebinding), come from the page's own origin when it says where it comes from (against
//! cross-site requests), and carry the access token, as the HttpOnly, SameSite=Strict cookie the
//! page got in exchange for the printed URL's `?token=`, or as `Authorization: Bearer` (scripts).
//! Anything else is 403.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The cookie the token is kept in, named after the port: browsers keep cookies per host, not
/// per port, so two servers on one machine would otherwise overwrite each other's.
pub fn cookie_name(port: u16) -> String {
    format!("initscope_token_{port}")
}

/// A fresh token: 32 bytes from the operating system, hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request carries: cookie `cookie`, bearer header or `?token=`.
fn presented(headers: &HeaderMap, query: Option<&str>, cookie: &str) -> Vec<String> {
    let mut out = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        if let Ok(v) = v.to_str() {
            for part in v.split(';') {
                if let Some(t) = part
                    .trim()
                    .strip_prefix(cookie)
                    .and_then(|r| r.strip_prefix('='))
                {
                    out.push(t.to_string());
                }
            }
        }
    }
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        out.push(t.trim().to_string());
    }
    out.extend(query_token(query));
    out
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
}

fn forbidden(why: &str) -> Response {
    let mut r = (StatusCode::FORBIDDEN, format!("initscope: error: {why}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The checks of the module docs, then the request; `GET /?token=T` answers with the cookie
/// and a redirect to `/` instead (the token leaves the address bar and the history).
pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| super::names_this_server(app.addr, h)) {
        return forbidden(&format!(
            "the Host header {:?} does not name this server ({})",
            host.unwrap_or(""),
            app.hosts.join(", ")
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin.to_str().ok().is_some_and(|o| {
            o.get(..7)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
                && super::names_this_server(app.addr, &o[7..])
        });
        if !ok {
            return forbidden("a request from another site is refused (Origin)");
        }
    }
    let query = req.uri().query();
    let cookie = cookie_name(app.addr.port());
    let valid = presented(headers, query, &cookie)
        .iter()
        .any(|t| same(t, &app.token));
    if !valid {
        return forbidden(
            "no valid access token: open the URL 'initscope serve' printed (it carries ?token=)",
        );
    }
    let exchange = req.method() == Method::GET
        && req.uri().path() == "/"
        && query_token(query).is_some_and(|t| same(&t, &app.token));
    if exchange {
        let cookie = format!("{cookie}={}; HttpOnly; SameSite=Strict; Path=/", app.token);
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/")
            .header(header::SET_COOKIE, cookie)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::empty())
            .unwrap_or_else(|_| forbidden("could not build the response"));
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_cookie_bearer_and_query() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; initscope_token_1=x; initscope_token_8350=abc; b=2"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer def"),
        );
        assert_eq!(
            presented(&h, Some("x=1&token=ghi"), &cookie_name(8350)),
            ["abc", "def", "ghi"]
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        let t = new_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token().unwrap());
    }
}
