//! The page in a real browser: Debian's Chromium, headless, driven through WebDriver
//! (chromedriver) with `fantoccini`. A person's path through the page: the printed URL, the
//! controls, the drawing, the share link, two pages at once, and how soon the first state is
//! drawn.
//!
//! Without /usr/bin/chromedriver or /usr/bin/chromium each test prints a "skipped: ..." line
//! and passes, unless `INITSCOPE_REQUIRE_BROWSER=1` (CI), where it fails. With
//! `INITSCOPE_SCREENSHOTS=DIR`, some tests save full-page PNG screenshots into DIR.
//!
//! The browser tests run one at a time (a lock), each with its own chromedriver and bounded in
//! time: every wait polls the page's `window.initscope` mirror (or the DOM) with a limit.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::client::Server;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The most one test may take, browser start included.
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// The most one wait for the page may take.
const WAIT: Duration = Duration::from_secs(30);

/// One browser test at a time: Chromium is heavy on a small machine, and the first-paint test
/// measures time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A chromedriver of one test; its browser sessions are ended and the driver killed on drop.
struct Driver {
    child: Child,
    port: u16,
    sessions: Mutex<Vec<String>>,
    _turn: MutexGuard<'static, ()>,
}

impl Driver {
    /// Starts chromedriver on a free port, or None (after a "skipped" line) when Chromium or
    /// chromedriver is not installed and the environment does not require them.
    fn start(test: &str) -> Option<Driver> {
        for path in [CHROMEDRIVER, CHROMIUM] {
            if !std::path::Path::new(path).exists() {
                let why =
                    format!("{path} is missing (Debian: apt-get install chromium chromium-driver)");
                if std::env::var("INITSCOPE_REQUIRE_BROWSER").as_deref() == Ok("1") {
                    panic!("{test}: {why}, and INITSCOPE_REQUIRE_BROWSER=1");
                }
                println!("skipped: {test}: {why}");
                return None;
            }
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let d = Driver {
            child,
            port,
            sessions: Mutex::new(Vec::new()),
            _turn: turn,
        };
        let t = Instant::now();
        while d.http("GET", "/status").is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "chromedriver did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }

    /// A request to chromedriver, with a short time limit: the status code, or None.
    fn http(&self, method: &str, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Runs a test's body on a tokio runtime, within [`TEST_LIMIT`].
    fn run(&self, body: impl Future<Output = ()>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(async {
            tokio::time::timeout(TEST_LIMIT, body)
                .await
                .unwrap_or_else(|_| panic!("the test took more than {TEST_LIMIT:?}"));
        });
    }

    /// A new browser (a fresh profile: no cookie) at 1400x1000.
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"],
            }),
        );
        let c = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("chromedriver starts a browser");
        if let Ok(Some(id)) = c.session_id().await {
            self.sessions.lock().unwrap().push(id);
        }
        c
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the sessions closes their browsers (killing chromedriver alone would leave
        // them behind).
        let ids = std::mem::take(&mut *self.sessions.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            let _ = self.http("DELETE", &format!("/session/{id}"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's URL for `path` (no token).
fn url(s: &Server, path: &str) -> String {
    format!("http://{}{path}", s.host)
}

/// The URL `initscope serve` prints (with the token), with an optional `#fragment`.
fn printed_url(s: &Server, fragment: &str) -> String {
    format!("http://{}/?token={}{fragment}", s.host, s.token)
}

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// What the page shows when a wait fails.
async fn diagnose(c: &Client) -> Value {
    c.execute(
        "const w = window.initscope || {}, t = (id) => (document.getElementById(id) || {}).textContent;
         return {url: location.href, error: t('error'), status: t('status'), step: t('step-count'),
                 verdict: t('verdict'), state_step: w.state && w.state.step,
                 update_step: w.lastUpdate && w.lastUpdate.step, body: document.body && document.body.innerText.slice(0, 300)};",
        vec![],
    )
    .await
    .unwrap_or(Value::Null)
}

/// Polls the JavaScript expression `expr` until it is truthy; returns its value.
async fn wait_js(c: &Client, what: &str, expr: &str) -> Value {
    let t = Instant::now();
    let script = format!("return ({expr});");
    loop {
        let v = js(c, &script).await;
        let truthy = match &v {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return v;
        }
        if t.elapsed() > WAIT {
            panic!(
                "waited {WAIT:?} for {what} ({expr}); the page: {}",
                diagnose(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

async fn find(c: &Client, id: &str) -> fantoccini::elements::Element {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
}

/// Types `value` into the field `id` (replacing what it held).
async fn type_into(c: &Client, id: &str, value: &str) {
    let e = find(c, id).await;
    e.clear()
        .await
        .unwrap_or_else(|e| panic!("clear #{id}: {e}"));
    e.send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
}

/// Picks the option whose value is `value` in the select `id`, as a person does (a click:
/// the page hears `input` and `change`).
async fn choose(c: &Client, id: &str, value: &str) {
    let index = js(
        c,
        &format!(
            "return [...document.getElementById('{id}').options].findIndex((o) => o.value === {});",
            json!(value)
        ),
    )
    .await;
    let index = index.as_i64().filter(|i| *i >= 0);
    let index = index.unwrap_or_else(|| panic!("#{id} has no option {value:?}"));
    find(c, id)
        .await
        .select_by_index(index as usize)
        .await
        .unwrap_or_else(|e| panic!("#{id} = {value}: {e}"));
}

/// Clicks the button `id` once it is enabled.
async fn click(c: &Client, id: &str) {
    wait_js(
        c,
        &format!("#{id} enabled"),
        &format!("!document.getElementById('{id}').disabled"),
    )
    .await;
    find(c, id)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

/// The value of every settings control (what a person sees in the form).
async fn controls(c: &Client) -> Value {
    js(
        c,
        "const v = (id) => document.getElementById(id).value;
         const out = {};
         for (const id of ['data', 'noise', 'points', 'hidden', 'act', 'net', 'init', 'bias-init',
                           'loss', 'optim', 'lr', 'batch', 'steps', 'dropout', 'grad-noise', 'seed',
                           'precision', 'eval-every']) out[id] = v(id);
         return out;",
    )
    .await
}

/// Remembers the page's current state object, so that [`new_state`] can wait for the next.
async fn mark_state(c: &Client) {
    js(c, "window.__seen = window.initscope.state; return null;").await;
}

/// Waits for a state (a session's start, a settings change, a rewind) other than the one
/// [`mark_state`] saw, drawn; returns it.
async fn new_state(c: &Client, what: &str) -> Value {
    wait_js(
        c,
        what,
        "window.initscope.state && window.initscope.state !== window.__seen
         && document.getElementById('step-count').textContent === 'step 0 / ' + window.initscope.state.total
         && window.initscope.state",
    )
    .await
}

/// Opens the printed URL (token in the query, optional fragment) and waits for the first
/// drawn state.
async fn open(c: &Client, s: &Server, fragment: &str) -> Value {
    c.goto(&printed_url(s, fragment)).await.expect("goto");
    wait_js(
        c,
        "the first state",
        "window.initscope && window.initscope.state && document.getElementById('step-count').textContent.startsWith('step 0 /') && window.initscope.state",
    )
    .await
}

/// Clicks Apply and waits for the restarted session's state.
async fn apply(c: &Client) -> Value {
    mark_state(c).await;
    click(c, "apply").await;
    new_state(c, "the state after Apply").await
}

/// Takes `n` steps with the step control and waits until the page has the update of step
/// `to` (and has drawn it).
async fn step(c: &Client, n: usize, to: usize) {
    type_into(c, "step-n", &n.to_string()).await;
    click(c, "step").await;
    wait_js(
        c,
        &format!("step {to}"),
        &format!(
            "window.initscope.lastUpdate && window.initscope.lastUpdate.step === {to}
             && document.getElementById('step-count').textContent.startsWith('step {to} /')"
        ),
    )
    .await;
}

/// Plays the run and waits until it is over.
async fn play_to_end(c: &Client) {
    click(c, "play").await;
    wait_js(
        c,
        "the end of the run",
        "window.initscope.state && ['done', 'diverged'].includes(window.initscope.state.status)",
    )
    .await;
}

/// Every evaluation the page holds, numbers as f64 (JavaScript has no integers: a loss of 1.0
/// comes back from the browser as 1).
async fn evals(c: &Client) -> Vec<Value> {
    match floats(js(c, "return window.initscope.evals;").await) {
        Value::Array(v) => v,
        v => panic!("evals: {v}"),
    }
}

/// `v` with every number an f64, for comparing the browser's JSON with the server's.
fn floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
        v => v,
    }
}

/// The hidden units drawn in #network: per layer, each unit's (data-class, fill).
async fn hidden_units(c: &Client) -> serde_json::Map<String, Value> {
    let v = js(
        c,
        "const out = {};
         for (const e of document.querySelectorAll('#network circle[data-class]'))
           (out[e.getAttribute('data-layer')] = out[e.getAttribute('data-layer')] || [])
             .push([e.getAttribute('data-class'), e.getAttribute('fill')]);
         return out;",
    )
    .await;
    v.as_object().expect("an object").clone()
}

/// With `INITSCOPE_SCREENSHOTS=DIR`: a PNG of the whole page at 1400 px wide, DIR/`name`.
async fn screenshot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("INITSCOPE_SCREENSHOTS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    let extra = js(c, "return window.outerHeight - window.innerHeight;")
        .await
        .as_u64()
        .unwrap_or(0);
    let h = js(
        c,
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight);",
    )
    .await
    .as_u64()
    .unwrap_or(1000);
    // The settings column scrolls on its own: from its top.
    js(
        c,
        "document.getElementById('settings').scrollTop = 0; window.scrollTo(0, 0); return null;",
    )
    .await;
    let (w, h0) = c.get_window_size().await.expect("window size");
    let height = (h + extra).max(h0) as u32;
    c.set_window_size(w as u32, height).await.expect("resize");
    // The page redraws on resize: two frames.
    c.execute_async(
        "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
        vec![],
    )
    .await
    .expect("frames");
    let png = c.screenshot().await.expect("a screenshot");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("the screenshot written");
    println!("screenshot: {}", path.display());
    c.set_window_size(w as u32, h0 as u32)
        .await
        .expect("resize back");
}

/// Ends a browser session (its browser closes).
async fn close(c: Client) {
    let _ = c.close().await;
}

#[test]
fn zeros_with_tanh_dies_with_one_colour_per_hidden_layer() {
    let Some(d) = Driver::start("zeros_with_tanh") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        open(&c, &s, "").await;
        // The token went: out of the address bar (303 to "/") and out of the page's reach.
        let at = c.current_url().await.expect("url");
        assert!(!at.as_str().contains("token"), "the address bar: {at}");
        assert!(!at.as_str().contains(&s.token), "the address bar: {at}");
        let cookie = js(&c, "return document.cookie;").await;
        assert!(
            !cookie.as_str().unwrap_or("").contains(&s.token),
            "the cookie is HttpOnly: {cookie}"
        );

        choose(&c, "init", "zeros").await;
        choose(&c, "act", "tanh").await;
        type_into(&c, "steps", "50").await;
        let state = apply(&c).await;
        assert_eq!(state["settings"]["init"], json!("zeros"), "{state}");
        assert_eq!(state["total"], json!(50), "{state}");
        step(&c, 50, 50).await;
        let verdict = wait_js(
            &c,
            "the verdict of step 50",
            "window.initscope.lastVerdict && window.initscope.lastVerdict.step === 50
             && document.getElementById('verdict').textContent.includes('dead')
             && document.getElementById('verdict').textContent",
        )
        .await;
        assert_eq!(verdict, json!("dead"));
        let units = hidden_units(&c).await;
        assert_eq!(
            units.keys().collect::<Vec<_>>(),
            ["1", "2"],
            "hidden layers drawn"
        );
        for (layer, us) in &units {
            let us = us.as_array().unwrap();
            assert_eq!(us.len(), 16, "layer {layer}");
            assert!(
                us.iter().all(|u| u == &us[0]),
                "layer {layer}: one class, one colour: {us:?}"
            );
        }
        screenshot(&c, "serve-zeros.png").await;
        close(c).await;
    });
}

#[test]
fn the_pytorch_default_splits_every_hidden_layer_and_learns_moons() {
    let Some(d) = Driver::start("pytorch_default") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        let state = open(&c, &s, "").await;
        assert_eq!(state["settings"]["init"], json!("pytorch"), "{state}");
        let total = state["total"].as_u64().unwrap() as usize;
        step(&c, total, total).await;
        wait_js(
            &c,
            "the run done, its verdict drawn",
            "window.initscope.state.status === 'done' && window.initscope.lastVerdict
             && document.getElementById('verdict').textContent === window.initscope.lastVerdict.verdict",
        )
        .await;
        let units = hidden_units(&c).await;
        assert_eq!(units.keys().collect::<Vec<_>>(), ["1", "2"]);
        for (layer, us) in &units {
            let us = us.as_array().unwrap();
            let classes: std::collections::BTreeSet<String> = us.iter().map(|u| u[0].to_string()).collect();
            let fills: std::collections::BTreeSet<String> = us.iter().map(|u| u[1].to_string()).collect();
            assert_eq!(
                (us.len(), classes.len()),
                (16, 16),
                "layer {layer}: 16 classes"
            );
            // Distinct classes never share a colour.
            assert_eq!(fills.len(), 16, "layer {layer}: {us:?}");
        }
        let ev = evals(&c).await;
        let last = ev.last().expect("evaluations");
        assert_eq!(last["step"], json!(total as f64));
        let acc = last["test_acc"].as_f64().unwrap();
        assert!(acc >= 0.9, "test accuracy {acc}");
        let shown = js(&c, "return document.getElementById('acc-last').textContent;").await;
        assert!(shown.as_str().unwrap().contains("test"), "{shown}");
        let verdict = js(&c, "return window.initscope.lastVerdict;").await;
        assert_eq!(verdict["verdict"], json!("full"), "{verdict}");
        assert_eq!(verdict["learning"], json!("learned"), "{verdict}");
        // A click on a unit: its incoming weights (a bar each) and its activation over the plane.
        c.find(Locator::Css("#network circle[data-layer='2'][data-unit='5']"))
            .await
            .expect("unit 5 of layer 2")
            .click()
            .await
            .expect("click the unit");
        let panel = wait_js(
            &c,
            "the unit panel",
            "document.querySelector('#unit-panel canvas.heat') && {
               title: document.getElementById('unit-title').textContent,
               bars: document.querySelectorAll('#unit-panel svg.bars rect').length,
               selected: document.querySelectorAll('#network circle.selected').length }",
        )
        .await;
        assert!(
            panel["title"].as_str().unwrap().contains("unit 5"),
            "{panel}"
        );
        assert_eq!(panel["bars"], json!(16), "fan_in 16: {panel}");
        assert_eq!(panel["selected"], json!(1), "{panel}");
        screenshot(&c, "serve-pytorch.png").await;
        close(c).await;
    });
}

#[test]
fn rewind_replays_the_losses_exactly() {
    let Some(d) = Driver::start("rewind") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        open(&c, &s, "").await;
        type_into(&c, "eval-every", "1").await;
        type_into(&c, "steps", "40").await;
        choose(&c, "init", "xavier_uniform").await;
        apply(&c).await;
        play_to_end(&c).await;
        let first = evals(&c).await;
        let steps: Vec<f64> = first.iter().map(|e| e["step"].as_f64().unwrap()).collect();
        assert_eq!(
            steps,
            (0..=40).map(f64::from).collect::<Vec<_>>(),
            "an evaluation per step"
        );
        mark_state(&c).await;
        click(&c, "rewind").await;
        let state = new_state(&c, "the state after rewind").await;
        assert_eq!(state["step"], json!(0));
        assert_eq!(evals(&c).await.len(), 1, "only step 0 after rewind");
        play_to_end(&c).await;
        let second = evals(&c).await;
        let loss = |e: &[Value]| -> Vec<f64> {
            e[..20]
                .iter()
                .map(|x| x["train_loss"].as_f64().unwrap())
                .collect()
        };
        assert_eq!(loss(&first), loss(&second), "the first 20 losses");
        assert_eq!(first, second, "every evaluation");
        close(c).await;
    });
}

#[test]
fn a_bad_setting_shows_the_command_lines_error() {
    let Some(d) = Driver::start("bad_setting") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        let before = open(&c, &s, "").await;
        for (id, typed, flag) in [("lr", "-1", "--lr"), ("hidden", "16,abc", "--hidden")] {
            type_into(&c, id, typed).await;
            click(&c, "apply").await;
            let shown = wait_js(
                &c,
                "the error line",
                "document.getElementById('error').classList.contains('shown')
                 && document.getElementById('error').textContent",
            )
            .await;
            let expected = super::cli_error(&["--data", "moons", flag, typed]);
            assert_eq!(shown, json!(expected), "{flag} {typed}");
            assert!(
                find(&c, "error").await.is_displayed().await.unwrap(),
                "the error is visible"
            );
            // The run is as it was.
            let now = js(&c, "return window.initscope.state;").await;
            assert_eq!(now["id"], before["id"]);
            assert_eq!(now["settings"], before["settings"]);
            // A good value again: the next success clears the line.
            type_into(&c, id, if id == "lr" { "0.3" } else { "16,16" }).await;
            apply(&c).await;
            wait_js(
                &c,
                "the error line cleared",
                "document.getElementById('error').textContent === ''",
            )
            .await;
        }
        close(c).await;
    });
}

#[test]
fn the_share_link_restores_every_setting_and_holds_no_token() {
    let Some(d) = Driver::start("share_link") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        open(&c, &s, "").await;
        type_into(&c, "noise", "0.2").await;
        type_into(&c, "points", "300").await;
        type_into(&c, "hidden", "8,12").await;
        choose(&c, "act", "relu").await;
        choose(&c, "init", "he_normal").await;
        choose(&c, "bias-init", "zeros").await;
        choose(&c, "optim", "adam").await;
        type_into(&c, "lr", "0.02").await;
        type_into(&c, "batch", "64").await;
        type_into(&c, "steps", "500").await;
        type_into(&c, "dropout", "0.1").await;
        type_into(&c, "seed", "7").await;
        choose(&c, "precision", "f64").await;
        type_into(&c, "eval-every", "5").await;
        let changed = controls(&c).await;
        let first = apply(&c).await;
        let settings = first["settings"].clone();
        for (k, v) in [
            ("data", json!("moons:n=300,noise=0.2")),
            ("hidden", json!("8,12")),
            ("act", json!("relu")),
            ("init", json!("he_normal")),
            ("bias_init", json!("zeros")),
            ("optim", json!("adam")),
            ("lr", json!(0.02)),
            ("batch", json!(64)),
            ("steps", json!(500)),
            ("dropout", json!(0.1)),
            ("seed", json!(7)),
            ("precision", json!("f64")),
            ("eval_every", json!(5)),
        ] {
            assert_eq!(settings[k], v, "{k}: {settings}");
        }
        assert_eq!(controls(&c).await, changed, "the form after Apply");

        click(&c, "share").await;
        let link = wait_js(
            &c,
            "the share link",
            "document.getElementById('share-link').textContent",
        )
        .await;
        let link = link.as_str().unwrap().to_string();
        let href = js(&c, "return document.getElementById('share-link').href;").await;
        assert_eq!(href, json!(link));
        assert!(!link.contains("token"), "{link}");
        assert!(!link.contains(&s.token), "{link}");
        assert!(link.starts_with(&url(&s, "/#")), "{link}");

        // The link in a new tab of the same browser (it has the cookie).
        let tab = c.new_window(true).await.expect("a new tab").handle;
        c.switch_to_window(tab).await.expect("to the tab");
        c.goto(&link).await.expect("open the link");
        let second = wait_js(
            &c,
            "the linked page's state",
            "window.initscope && window.initscope.state && window.initscope.state",
        )
        .await;
        assert_ne!(second["id"], first["id"], "a session of its own");
        assert_eq!(second["settings"], settings);
        assert_eq!(second["command"], first["command"]);
        wait_js(
            &c,
            "the form filled",
            "document.getElementById('step-count').textContent.startsWith('step 0 /')",
        )
        .await;
        assert_eq!(controls(&c).await, changed, "the form from the link");
        let err = js(&c, "return document.getElementById('error').textContent;").await;
        assert_eq!(err, json!(""));
        close(c).await;
    });
}

#[test]
fn a_browser_without_the_cookie_is_refused() {
    let Some(d) = Driver::start("no_cookie") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        // One browser that has the cookie...
        let c = d.browser().await;
        open(&c, &s, "").await;
        let ok = js(&c, "return fetch('/api/options').then((r) => r.status);").await;
        assert_eq!(ok, json!(200));
        // ... and a fresh one that has not.
        let other = d.browser().await;
        other.goto(&url(&s, "/")).await.expect("goto");
        let body = js(&other, "return document.body.innerText;").await;
        let body = body.as_str().unwrap();
        assert!(
            body.contains("no valid access token"),
            "the 403 text: {body:?}"
        );
        let status = js(&other, "return fetch('/api/options').then((r) => r.status);").await;
        assert_eq!(status, json!(403));
        let status = js(
            &other,
            "return fetch('/api/sessions', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then((r) => r.status);",
        )
        .await;
        assert_eq!(status, json!(403));
        // A wrong token neither.
        other
            .goto(&format!("http://{}/?token={}", s.host, "0".repeat(64)))
            .await
            .expect("goto");
        let body = js(&other, "return document.body.innerText;").await;
        assert!(body.as_str().unwrap().contains("no valid access token"));
        close(other).await;
        close(c).await;
    });
}

#[test]
fn two_pages_train_at_once_without_interfering() {
    let Some(d) = Driver::start("two_pages") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        // Page A from the printed URL with settings in its fragment (kept across the redirect),
        // page B from a link in a second window.
        let a = c.window().await.expect("window");
        let sa = open(&c, &s, "#init=zeros&steps=1000").await;
        assert_eq!(sa["settings"]["init"], json!("zeros"));
        let b = c.new_window(false).await.expect("a window").handle;
        c.switch_to_window(b.clone()).await.expect("to B");
        c.goto(&url(&s, "/#init=pytorch&seed=3&steps=1000"))
            .await
            .expect("goto");
        let sb = wait_js(
            &c,
            "B's state",
            "window.initscope && window.initscope.state && document.getElementById('step-count').textContent.startsWith('step 0 /') && window.initscope.state",
        )
        .await;
        assert_eq!(sb["settings"]["seed"], json!(3));
        assert_ne!(sa["id"], sb["id"]);

        // Both play (500 steps per second: 2 s each), B starting while A runs.
        c.switch_to_window(a.clone()).await.expect("to A");
        click(&c, "play").await;
        c.switch_to_window(b.clone()).await.expect("to B");
        click(&c, "play").await;
        c.switch_to_window(a.clone()).await.expect("to A");
        let a_at = js(&c, "return window.initscope.lastUpdate.step;").await;
        println!("A at step {a_at} when B had started");
        let mut got = Vec::new();
        for (w, settings) in [(a, &sa["settings"]), (b, &sb["settings"])] {
            c.switch_to_window(w).await.expect("window");
            wait_js(
                &c,
                "the end of the run",
                "window.initscope.state.status === 'done'",
            )
            .await;
            got.push((evals(&c).await, settings.clone()));
        }
        // Each run equals the same settings alone (a server of its own, through HTTP).
        let solo = Server::start(&[]);
        for (page, settings) in &got {
            assert_eq!(page.len(), 101, "an evaluation every 10 steps");
            let id = solo.session(settings.clone());
            let mut ev = solo.events(&id);
            let alone: Vec<Value> = super::run_to_end(&solo, &id, &mut ev)
                .into_iter()
                .map(floats)
                .collect();
            assert_eq!(page, &alone, "{settings}");
        }
        assert_ne!(got[0].0.last(), got[1].0.last());
        close(c).await;
    });
}

#[test]
fn the_first_state_is_drawn_within_a_second() {
    let Some(d) = Driver::start("first_paint") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        // A first load warms the browser (its caches, its processes)...
        open(&c, &s, "").await;
        let first = wait_js(
            &c,
            "the first-draw mark",
            "performance.getEntriesByName('initscope-first-draw').length
             && performance.getEntriesByName('initscope-first-draw')[0].startTime",
        )
        .await;
        // ... and a person's next visit of the printed URL is measured.
        c.goto("about:blank").await.expect("blank");
        open(&c, &s, "").await;
        let ms = wait_js(
            &c,
            "the first-draw mark",
            "performance.getEntriesByName('initscope-first-draw').length
             && performance.getEntriesByName('initscope-first-draw')[0].startTime",
        )
        .await
        .as_f64()
        .unwrap();
        println!("first drawn state: {ms:.0} ms after navigation start (cold browser: {first} ms)");
        assert!(ms < 1000.0, "first drawn state after {ms} ms");
        // The drawing is there: every unit of the network, the boundary, the charts.
        let drawn = js(
            &c,
            "return {units: document.querySelectorAll('#network circle').length,
                     canvas: !document.getElementById('boundary').hidden,
                     charts: document.querySelectorAll('#loss-chart canvas, #acc-chart canvas').length};",
        )
        .await;
        assert_eq!(drawn["units"], json!(2 + 16 + 16 + 2), "{drawn}");
        assert_eq!(drawn["canvas"], json!(true), "{drawn}");
        assert_eq!(drawn["charts"], json!(2), "{drawn}");
        close(c).await;
    });
}

#[test]
fn the_rezero_preset_trains_a_residual_network() {
    let Some(d) = Driver::start("rezero") else {
        return;
    };
    d.run(async {
        let s = Server::start(&[]);
        let c = d.browser().await;
        open(&c, &s, "").await;
        mark_state(&c).await;
        click_preset(&c, "rezero").await;
        let state = new_state(&c, "the preset's state").await;
        let net = state["settings"]["net"].as_str().unwrap_or("");
        assert!(net.contains("gate(0)"), "{state}");
        assert_eq!(state["settings"]["init"], json!("kaiming_normal"));
        // Input, 1 + 4 * 2 linear layers inside, the output.
        let layers = state["layers"].as_array().unwrap().len();
        assert_eq!(layers, 11, "{}", state["layers"]);
        let net_field = js(&c, "return document.getElementById('net').value;").await;
        assert_eq!(net_field, json!(net));
        // Mid-training.
        step(&c, 400, 400).await;
        wait_js(
            &c,
            "a verdict",
            "window.initscope.lastVerdict && window.initscope.lastVerdict.step === 400",
        )
        .await;
        let units = hidden_units(&c).await;
        assert_eq!(units.len(), 9, "every hidden linear layer drawn");
        screenshot(&c, "serve-rezero.png").await;
        close(c).await;
    });
}

async fn click_preset(c: &Client, name: &str) {
    c.find(Locator::Css(&format!("button[data-preset='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("preset {name}: {e}"))
        .click()
        .await
        .expect("click the preset");
}
