//! The routes: the page and its assets, and the JSON API (`/api/...`). Every route is behind
//! [`super::auth::guard`]. Errors are JSON `{"error": "<the CLI's one line>"}` with 400 for bad
//! input, 404 for a session that does not exist (or ended), 503 when the server is full.

// The error of a handler's helper is the HTTP answer itself, built once on a path that ends the
// request: its size does not matter.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc as tmpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;

use super::session::{self, Action, Command, Msg, Reply, STREAM_QUEUE};
use super::settings::{self, Setup};
use super::{auth, AppState};

/// The page's files, embedded so the binary serves them offline.
const INDEX: &str = include_str!("../../assets/serve/index.html");
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/serve/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/serve/style.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/vendor/uplot/uPlot.min.css"),
    ),
];

/// How long a request waits for its session's answer (questions that replay a run wait longer).
const ANSWER: Duration = Duration::from_secs(10);
const SLOW_ANSWER: Duration = Duration::from_secs(300);

/// The largest request body: settings are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

/// Event streams one session may have open at once (a page holds one).
pub const MAX_STREAMS: usize = 8;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/options", get(options))
        .route("/api/status", get(status))
        .route("/api/sessions", post(create))
        .route("/api/sessions/{id}", axum::routing::delete(delete))
        .route("/api/sessions/{id}/events", get(events))
        .route("/api/sessions/{id}/control", post(control))
        .route(
            "/api/sessions/{id}/settings",
            axum::routing::put(change_settings),
        )
        .route("/api/sessions/{id}/unit", get(unit))
        .route("/api/sessions/{id}/explain", get(explain))
        .route("/api/sessions/{id}/archive", get(archive))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn index() -> Response {
    no_store(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response())
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => ([(header::CONTENT_TYPE, *mime)], *body).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("initscope: error: no asset '{name}'"),
        ),
    }
}

async fn options(State(app): State<AppState>) -> Response {
    Json(settings::options(&app.limits)).into_response()
}

/// Open sessions and the threads they hold (a session holds two: trainer and worker).
async fn status(State(app): State<AppState>) -> Response {
    let sessions = prune(&app);
    Json(json!({"sessions": sessions, "threads": app.threads.get()})).into_response()
}

/// Drops sessions whose threads ended; returns how many remain.
fn prune(app: &AppState) -> usize {
    let Ok(mut m) = app.sessions.lock() else {
        return 0;
    };
    m.retain(|_, s| !s.thread.is_finished());
    m.len()
}

/// The command channel of session `id`.
fn sender(app: &AppState, id: &str) -> Result<std::sync::mpsc::Sender<Command>, Response> {
    session_of(app, id).map(|(tx, _)| tx)
}

/// The command channel of session `id` and its count of open event streams.
fn session_of(
    app: &AppState,
    id: &str,
) -> Result<(std::sync::mpsc::Sender<Command>, Arc<AtomicUsize>), Response> {
    prune(app);
    app.sessions
        .lock()
        .ok()
        .and_then(|m| m.get(id).map(|s| (s.commands.clone(), s.streams.clone())))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("initscope: error: no session '{id}' (a session ends {} s after its page closes)", app.idle.as_secs()),
            )
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    settings: Map<String, Value>,
}

/// The request body (as axum read it, within [`MAX_BODY`]) as JSON `T`, or the answer that says
/// what is wrong with it (one line, as every error): unreadable or too large, not JSON, or not
/// what the API takes. An empty body is `T`'s default when `empty` is given.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    empty: Option<fn() -> T>,
) -> Result<T, Response> {
    let body =
        body.map_err(|e| error(e.status(), format!("initscope: error: {}", e.body_text())))?;
    if let Some(make) = empty {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(make());
        }
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "initscope: error: the request body must be JSON (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("initscope: error: the request body is not what the API takes: {e}"),
        )
    })
}

/// Validates settings off the async threads (making a data set can take a moment).
async fn validated(app: &AppState, settings: Map<String, Value>) -> Result<Setup, Response> {
    let (limits, files) = (app.limits, app.files.clone());
    tokio::task::spawn_blocking(move || settings::validate_settings(&settings, &limits, &files))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))
}

fn new_id() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn full(app: &AppState) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "initscope: error: {} sessions are open, the most this server allows (--max-sessions); close a page",
            app.max_sessions
        ),
    )
}

async fn create(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let settings = match json_body::<SettingsBody>(
        &headers,
        body,
        Some(|| SettingsBody {
            settings: Map::new(),
        }),
    ) {
        Ok(b) => b.settings,
        Err(r) => return r,
    };
    // Checked before the work of validating, and again, under the lock, when the session is
    // added: requests that arrive together all pass the first check.
    if prune(&app) >= app.max_sessions {
        return full(&app);
    }
    let setup = match validated(&app, settings).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let command = setup.command.clone();
    let id = new_id();
    let Ok(mut m) = app.sessions.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "initscope: error: the session table is unusable",
        );
    };
    m.retain(|_, s| !s.thread.is_finished());
    if m.len() >= app.max_sessions {
        return full(&app);
    }
    match session::start(id.clone(), setup, app.threads.clone(), app.idle) {
        Ok(s) => {
            m.insert(id.clone(), s);
            drop(m);
            Json(json!({"id": id, "command": command})).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("initscope: error: cannot start a session thread: {e}"),
        ),
    }
}

async fn delete(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let s = app.sessions.lock().ok().and_then(|mut m| m.remove(&id));
    match s {
        Some(s) => {
            let _ = s.commands.send(Command::Stop);
            let _ = tokio::task::spawn_blocking(move || s.thread.join()).await;
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            format!("initscope: error: no session '{id}'"),
        ),
    }
}

/// Counts an open event stream until the stream (the answer's body) is dropped.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn events(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    let (tx, open) = match session_of(&app, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Each stream holds a queue of events on the server: a bounded number per session.
    if open.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        open.fetch_sub(1, Ordering::SeqCst);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("initscope: error: session '{id}' has {MAX_STREAMS} event streams open, the most it allows; close one"),
        );
    }
    let slot = StreamSlot(open);
    let (stream_tx, stream_rx) = tmpsc::channel::<Msg>(STREAM_QUEUE);
    if tx.send(Command::Subscribe(stream_tx)).is_err() {
        return error(
            StatusCode::NOT_FOUND,
            format!("initscope: error: session '{id}' ended"),
        );
    }
    let stream = ReceiverStream::new(stream_rx).map(move |m| {
        let _slot = &slot;
        Ok::<_, std::convert::Infallible>(Event::default().event(m.event).data(&*m.data))
    });
    no_store(
        Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
            .into_response(),
    )
}

/// Sends a command carrying a reply channel and waits for the answer.
async fn ask<T>(
    app: &AppState,
    id: &str,
    make: impl FnOnce(Reply<T>) -> Command,
    wait: Duration,
) -> Result<T, Response> {
    let tx = sender(app, id)?;
    let (rtx, rrx) = oneshot::channel();
    tx.send(make(rtx)).map_err(|_| {
        error(
            StatusCode::NOT_FOUND,
            format!("initscope: error: session '{id}' ended"),
        )
    })?;
    match tokio::time::timeout(wait, rrx).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(error(StatusCode::BAD_REQUEST, e)),
        Ok(Err(_)) => Err(error(
            StatusCode::NOT_FOUND,
            format!("initscope: error: session '{id}' ended"),
        )),
        Err(_) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "initscope: error: session '{id}' did not answer within {} s",
                wait.as_secs()
            ),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    action: String,
    steps: Option<usize>,
    /// For `speed`: steps per second, or null for as fast as the engine goes.
    steps_per_second: Option<f64>,
}

async fn control(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body: ControlBody = match json_body(&headers, body, None) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let action = match body.action.as_str() {
        "play" => Action::Play,
        "pause" => Action::Pause,
        "rewind" => Action::Rewind,
        "step" => match body.steps.unwrap_or(1) {
            n @ 1..=100_000 => Action::Step(n),
            n => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("initscope: error: steps {n}: a single step takes 1 to 100000 updates"),
                )
            }
        },
        "speed" => match body.steps_per_second {
            None => Action::Speed(None),
            Some(v) if v.is_finite() && v >= 1.0 => Action::Speed(Some(v)),
            Some(v) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("initscope: error: speed {v}: steps per second must be at least 1 (or null for full speed)"),
                )
            }
        },
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("initscope: error: unknown action '{other}' (play, pause, step, rewind, speed)"),
            )
        }
    };
    // A step of many updates answers when they are taken (or a pause cuts it short).
    let wait = if matches!(action, Action::Step(_)) {
        SLOW_ANSWER
    } else {
        ANSWER
    };
    match ask(&app, &id, |r| Command::Control(action, r), wait).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn change_settings(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body: SettingsBody = match json_body(&headers, body, None) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = sender(&app, &id) {
        return r;
    }
    let setup = match validated(&app, body.settings).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let command = setup.command.clone();
    match ask(&app, &id, |r| Command::Settings(Box::new(setup), r), ANSWER).await {
        Ok(_) => Json(json!({"id": id, "command": command})).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct UnitQuery {
    layer: usize,
    unit: usize,
}

async fn unit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<UnitQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("initscope: error: {}", e.body_text()),
            )
        }
    };
    let (layer, unit) = (q.layer, q.unit);
    match ask(
        &app,
        &id,
        |reply| Command::Unit { layer, unit, reply },
        ANSWER,
    )
    .await
    {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn explain(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match ask(&app, &id, Command::Explain, SLOW_ANSWER).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn archive(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    match ask(&app, &id, Command::Archive, SLOW_ANSWER).await {
        Ok((name, bytes)) => no_store(
            (
                [
                    (header::CONTENT_TYPE, "application/zip".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                bytes,
            )
                .into_response(),
        ),
        Err(r) => r,
    }
}
