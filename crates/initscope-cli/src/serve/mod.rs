//! `initscope serve`: a live local page to watch an initialization work or fail.
//!
//! An axum server on a tokio runtime serves one page (embedded in the binary, uPlot vendored
//! beside it: no network at run time) and a JSON API. Each page opens a session: a thread that
//! owns the run, trains it with the library's engine and streams compact updates to the page by
//! server-sent events (`session.rs`); the page draws. Settings are the `train` flags, parsed and
//! validated exactly as the command line does (`settings.rs`); access needs the token printed at
//! start, exchanged for a cookie (`auth.rs`). Handlers are in `api.rs`.

mod api;
mod auth;
pub mod session;
pub mod settings;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use clap::Args;

use session::{Session, ThreadCount};
use settings::Limits;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. The default, 127.0.0.1, is reachable from this machine only; any
    /// other address lets other machines reach the page (the token still guards it), and a
    /// warning says so.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8350)]
    pub port: u16,
    /// Open the page in the default browser.
    #[arg(long)]
    pub open: bool,
    /// A data file (any --data spec of train) pages may use besides the built-in sets;
    /// repeatable. Pages can name no other file.
    #[arg(long = "data", value_name = "SPEC")]
    pub data: Vec<String>,
    /// Sessions (open pages) at once.
    #[arg(long, default_value_t = 32)]
    pub max_sessions: usize,
    /// Widest layer a page may ask for.
    #[arg(long, default_value_t = 256)]
    pub max_width: usize,
    /// Most linear layers a page may ask for.
    #[arg(long, default_value_t = 16)]
    pub max_layers: usize,
    /// Most training steps of one run.
    #[arg(long, default_value_t = 100_000)]
    pub max_steps: usize,
    /// Most data rows (training and test) of one run.
    #[arg(long, default_value_t = 20_000)]
    pub max_points: usize,
    /// Memory one session's run may take, in MiB (the run's estimate, as train's
    /// --max-memory); the server's bound is about max-sessions times this.
    #[arg(long, default_value_t = 64)]
    pub session_memory: usize,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    token: Arc<str>,
    /// Host header values that name this server (`127.0.0.1:8350`, `localhost:8350`).
    hosts: Arc<Vec<String>>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    threads: ThreadCount,
    limits: Limits,
    files: Arc<Vec<String>>,
    max_sessions: usize,
}

/// The Host header values of a server listening on `addr`.
fn host_names(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{port}"));
    }
    hosts
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    settings::check_files(&a.data)?;
    let limits = Limits {
        max_width: a.max_width,
        max_layers: a.max_layers,
        max_steps: a.max_steps,
        max_points: a.max_points,
        max_memory_mib: a.session_memory,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(serve(a, limits))
}

async fn serve(a: ServeArgs, limits: Limits) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(a.host, a.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", a.host, a.port))?;
    let addr = listener.local_addr()?;
    let token = auth::new_token().context("drawing the access token")?;
    let state = AppState {
        token: token.clone().into(),
        hosts: Arc::new(host_names(addr)),
        sessions: Arc::default(),
        threads: ThreadCount::default(),
        limits,
        files: Arc::new(a.data.clone()),
        max_sessions: a.max_sessions,
    };
    let url = format!("http://{}/?token={token}", state.hosts[0]);
    if !a.host.is_loopback() {
        eprintln!(
            "initscope: warning: listening on {} (not a loopback address): other machines can reach the page; anyone with the URL below can use it",
            a.host
        );
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "initscope serve: {url}")?;
        writeln!(
            out,
            "  open that URL (it carries the access token); Ctrl-C stops the server"
        )?;
        out.flush()?;
    }
    if a.open {
        if let Err(e) = webbrowser::open(&url) {
            eprintln!("initscope: warning: could not open a browser ({e}); open the URL above");
        }
    }
    let app = api::router(state.clone());
    let stopping = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            // Sessions end their event streams, so the open connections close.
            if let Ok(m) = stopping.sessions.lock() {
                for s in m.values() {
                    let _ = s.commands.send(session::Command::Stop);
                }
            }
        })
        .await
        .context("serving")?;
    // Stop every session and wait for its threads.
    let sessions: Vec<Session> = state
        .sessions
        .lock()
        .map(|mut m| m.drain().map(|(_, s)| s).collect())
        .unwrap_or_default();
    for s in sessions {
        let _ = s.commands.send(session::Command::Stop);
        let _ = s.thread.join();
    }
    Ok(ExitCode::SUCCESS)
}
