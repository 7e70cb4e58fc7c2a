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
    /// --max-memory). A session holds its run and, on its worker, a replay of it (verdicts and
    /// the archive are computed from one) and the replay's records: up to about twice this,
    /// so the server's bound is about 2 x max-sessions x this.
    #[arg(long, default_value_t = 64)]
    pub session_memory: usize,
    /// Floating-point operations a step, an evaluation or an update of one page may take
    /// (a session answers pause and play between them; 2e8 is a few milliseconds).
    #[arg(long, default_value_t = 2e8)]
    pub max_work: f64,
    /// Seconds a session lives after its page closed (tests shorten it).
    #[arg(long, default_value_t = session::IDLE.as_secs(), hide = true)]
    pub idle_seconds: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    token: Arc<str>,
    /// Host header values that name this server (`127.0.0.1:8350`, `localhost:8350`); the
    /// first is the printed URL's.
    hosts: Arc<Vec<String>>,
    /// The address listened on.
    addr: SocketAddr,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    threads: ThreadCount,
    limits: Limits,
    files: Arc<Vec<String>>,
    max_sessions: usize,
    idle: std::time::Duration,
}

/// The Host header values of a server listening on `addr`, the printed URL's first (for an
/// unspecified address, 0.0.0.0 or ::, this machine's loopback address; any address of the
/// machine names the server then, see [`names_this_server`]).
fn host_names(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let mut hosts = vec![SocketAddr::new(ip, port).to_string()];
    if ip.is_loopback() {
        hosts.push(format!("localhost:{port}"));
    }
    hosts
}

/// Whether a Host header (or an Origin's host) names a server listening on `addr`: its address
/// and port, or `localhost` and the port for a loopback address. A server listening on every
/// address (0.0.0.0, ::) takes any IP address with its port: pages of other machines reach it
/// by one. A host name other than localhost never passes (DNS rebinding needs one).
fn names_this_server(addr: SocketAddr, host: &str) -> bool {
    let ip = addr.ip();
    if let Some(port) = host
        .rsplit_once(':')
        .filter(|(name, _)| name.eq_ignore_ascii_case("localhost"))
        .map(|(_, port)| port)
    {
        return (ip.is_loopback() || ip.is_unspecified()) && port == addr.port().to_string();
    }
    host.parse::<SocketAddr>().is_ok_and(|h| {
        h.port() == addr.port() && (canonical(h.ip()) == canonical(ip) || ip.is_unspecified())
    })
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_width: a.max_width,
        max_layers: a.max_layers,
        max_steps: a.max_steps,
        max_points: a.max_points,
        max_memory_mib: a.session_memory,
        max_work: a.max_work,
    };
    if a.max_sessions == 0 {
        anyhow::bail!("--max-sessions: must be at least 1");
    }
    settings::check_start(&limits, &a.data)?;
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
        addr,
        sessions: Arc::default(),
        threads: ThreadCount::default(),
        limits,
        files: Arc::new(a.data.clone()),
        max_sessions: a.max_sessions,
        idle: std::time::Duration::from_secs(a.idle_seconds),
    };
    let url = format!("http://{}/?token={token}", state.hosts[0]);
    if !a.host.is_loopback() {
        eprintln!(
            "initscope: warning: listening on {} (not a loopback address): other machines can reach the page by this machine's address; anyone with the token can use it",
            a.host
        );
    }
    {
        // Best effort: a reader that went away (`| head -1`) does not stop the server.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "initscope serve: {url}\n  open that URL (it carries the access token); Ctrl-C stops the server"
        )
        .and_then(|()| out.flush());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_that_name_the_server() {
        let local: SocketAddr = "127.0.0.1:8350".parse().unwrap();
        assert_eq!(host_names(local), ["127.0.0.1:8350", "localhost:8350"]);
        for h in [
            "127.0.0.1:8350",
            "localhost:8350",
            "LOCALHOST:8350",
            "[::ffff:127.0.0.1]:8350",
        ] {
            assert!(names_this_server(local, h), "{h}");
        }
        for h in [
            "127.0.0.1:8351",
            "127.0.0.2:8350",
            "evil.example:8350",
            "localhost",
            "127.0.0.1",
            "localhost:8350.evil.example",
            "",
        ] {
            assert!(!names_this_server(local, h), "{h}");
        }
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(host_names(v6), ["[::1]:9000", "localhost:9000"]);
        assert!(
            names_this_server(v6, "[::1]:9000") && names_this_server(v6, "[0:0:0:0:0:0:0:1]:9000")
        );
        assert!(!names_this_server(v6, "127.0.0.1:9000"));
        // Every address: any IP address of the machine, never a name but localhost.
        let any: SocketAddr = "0.0.0.0:8350".parse().unwrap();
        assert_eq!(host_names(any), ["127.0.0.1:8350", "localhost:8350"]);
        for h in [
            "192.168.1.20:8350",
            "127.0.0.1:8350",
            "localhost:8350",
            "[fe80::1]:8350",
        ] {
            assert!(names_this_server(any, h), "{h}");
        }
        for h in ["192.168.1.20:80", "evil.example:8350", "myhost:8350"] {
            assert!(!names_this_server(any, h), "{h}");
        }
        let lan: SocketAddr = "192.168.1.20:8350".parse().unwrap();
        assert_eq!(host_names(lan), ["192.168.1.20:8350"]);
        assert!(names_this_server(lan, "192.168.1.20:8350"));
        assert!(!names_this_server(lan, "localhost:8350"));
    }
}
