//! `initscope serve` through HTTP: access control, settings validated as the CLI's flags,
//! sessions that train, rewind bit-identically, end when their page goes away and do not
//! interfere, and an archive that is `train --out`'s run directory. The page itself is tested
//! in a real browser in `browser.rs`.

mod browser;
mod client;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::{Duration, Instant};

use client::{request, Events, Server};
use serde_json::{json, Value};

/// The session's run directory as the page downloads it: a zip, answered 200.
fn archive(s: &Server, id: &str) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
    let r = request(
        &s.host,
        "GET",
        &format!("/api/sessions/{id}/archive"),
        &[("Authorization", &format!("Bearer {}", s.token))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/zip"));
    zip::ZipArchive::new(std::io::Cursor::new(r.body)).unwrap()
}

/// Every evaluation of a session's run from its event stream (deduplicated by step), until
/// the run is over.
fn run_to_end(server: &Server, id: &str, events: &mut Events) -> Vec<Value> {
    run_to_end_with_update(server, id, events).0
}

/// [`run_to_end`], and the last update.
fn run_to_end_with_update(server: &Server, id: &str, events: &mut Events) -> (Vec<Value>, Value) {
    server.control(id, json!({"action": "speed", "steps_per_second": null}));
    server.control(id, json!({"action": "play"}));
    let mut evals: BTreeMap<u64, Value> = BTreeMap::new();
    let last = events.until(Duration::from_secs(120), |e, v| {
        let (list, status, update) = match e {
            "state" => (&v["evals"], &v["status"], &v["update"]),
            "update" => (&v["evals"], &v["status"], v),
            _ => return None,
        };
        for x in list.as_array().into_iter().flatten() {
            evals.insert(x["step"].as_u64().unwrap(), x.clone());
        }
        (status == "done" || status == "diverged").then(|| update.clone())
    });
    (evals.into_values().collect(), last)
}

#[test]
fn requests_without_the_token_or_from_elsewhere_are_refused() {
    let s = Server::start(&[]);
    let host = s.host.clone();
    // No token at all: the page, its assets and the API.
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/assets/app.js"),
        ("GET", "/api/options"),
        ("POST", "/api/sessions"),
        ("GET", "/api/status"),
    ] {
        let r = request(&host, method, path, &[], Some("{}"));
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert!(r.text().contains("access token"), "{}", r.text());
    }
    // A wrong token, in each place a token is read from.
    let wrong = "0".repeat(64);
    let cookie = format!("initscope_token={wrong}");
    let bearer = format!("Bearer {wrong}");
    assert_eq!(
        request(&host, "GET", "/api/options", &[("Cookie", &cookie)], None).status,
        403
    );
    assert_eq!(
        request(
            &host,
            "GET",
            "/api/options",
            &[("Authorization", &bearer)],
            None
        )
        .status,
        403
    );
    assert_eq!(
        request(&host, "GET", &format!("/?token={wrong}"), &[], None).status,
        403
    );

    // The printed URL: the token is exchanged for an HttpOnly, SameSite=Strict cookie and the
    // browser is sent to "/" without it.
    let r = request(&host, "GET", &format!("/?token={}", s.token), &[], None);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    let set = r.header("set-cookie").expect("a cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = request(&host, "GET", "/", &[("Cookie", &cookie)], None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "the page");
    assert!(
        !page.text().contains(&s.token),
        "the page never holds the token"
    );
    assert!(page.header("content-security-policy").is_some());
    let opts = request(&host, "GET", "/api/options", &[("Cookie", &cookie)], None);
    assert_eq!(opts.status, 200);

    // DNS rebinding: a valid cookie under another Host name is refused.
    let r = request(
        &host,
        "GET",
        "/api/options",
        &[("Host", "evil.example:80"), ("Cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Host"), "{}", r.text());
    // A request from another site (its Origin) is refused; the page's own origin passes.
    let evil = [
        ("Origin", "http://evil.example"),
        ("Cookie", cookie.as_str()),
    ];
    let r = request(&host, "POST", "/api/sessions", &evil, Some("{}"));
    assert_eq!(r.status, 403, "{}", r.text());
    let own = format!("http://{host}");
    let r = request(
        &host,
        "GET",
        "/api/options",
        &[("Origin", &own), ("Cookie", &cookie)],
        None,
    );
    assert_eq!(r.status, 200);
}

/// The error line `initscope train ARGS` prints.
fn cli_error(args: &[&str]) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_initscope"))
        .arg("train")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    String::from_utf8_lossy(&o.stderr).trim_end().to_string()
}

#[test]
fn bad_settings_get_the_cli_message_and_limits_hold() {
    let s = Server::start(&["--max-width", "64"]);
    let bad = |settings: Value| s.refused(settings);
    // The same one line as the command line, for parse errors and validation errors.
    assert_eq!(bad(json!({"lr": "abc"})), cli_error(&["--lr", "abc"]));
    assert_eq!(bad(json!({"lr": -1})), cli_error(&["--lr", "-1"]));
    assert_eq!(bad(json!({"act": "tanhh"})), cli_error(&["--act", "tanhh"]));
    assert_eq!(
        bad(json!({"init": "xavier_banana"})),
        cli_error(&["--init", "xavier_banana"])
    );
    assert_eq!(
        bad(json!({"net": "linear(8) bogus linear"})),
        cli_error(&["--data", "moons", "--net", "linear(8) bogus linear"])
    );
    // The page's own limits.
    assert!(bad(json!({"hidden": "65"})).contains("wider than the page allows (64 at most)"));
    assert!(bad(json!({"steps": 1_000_000})).contains("more than the page allows"));
    // Work a session would do without answering commands: a full batch of mnist1d's 4000
    // training rows through four 64-wide layers is 6 x 4000 x 15488 products; minibatches pass.
    let e = bad(json!({"data": "mnist1d", "hidden": "64,64,64,64", "batch": "full"}));
    assert!(
        e.contains("one training step takes about 3.7e8 floating-point operations")
            && e.contains("more than the page allows (2e8"),
        "{e}"
    );
    let (status, v) = s.api(
        "POST",
        "/api/sessions",
        Some(&json!({"settings": {"data": "mnist1d", "hidden": "64,64,64,64", "batch": 64}})),
    );
    assert_eq!(status, 200, "{v}");
    assert!(bad(json!({"data": "moons:n=100000"})).contains("rows, more than the page allows"));
    assert!(bad(json!({"data": "/etc/passwd"})).contains("built-in data sets"));
    assert!(bad(json!({"data": "csv:/etc/passwd"})).contains("built-in data sets"));
    assert!(bad(json!({"init_from": "/tmp/x.safetensors"})).contains("unknown setting 'init_from'"));
    assert!(bad(json!({"max_memory": "100G"})).contains("unknown setting 'max_memory'"));
    assert!(bad(json!({"lr": [1, 2]})).contains("--lr"));

    // A bad settings change leaves the session as it was.
    let id = s.session(json!({"steps": 30}));
    let (status, v) = s.api(
        "PUT",
        &format!("/api/sessions/{id}/settings"),
        Some(&json!({"settings": {"dropout": 1.5}})),
    );
    assert_eq!(status, 400);
    assert_eq!(v["error"], json!(cli_error(&["--dropout", "1.5"])));
    let mut ev = s.events(&id);
    let (e, state) = ev.next();
    assert_eq!(e, "state");
    assert_eq!(state["settings"]["steps"], json!(30));
    // Bad control requests.
    let (status, v) = s.api(
        "POST",
        &format!("/api/sessions/{id}/control"),
        Some(&json!({"action": "jump"})),
    );
    assert_eq!(status, 400);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("unknown action 'jump'"));
    let (status, _) = s.api(
        "GET",
        &format!("/api/sessions/{id}/unit?layer=9&unit=0"),
        None,
    );
    assert_eq!(status, 400);
    let (status, _) = s.api("GET", "/api/sessions/nosuch/events", None);
    assert_eq!(status, 404);
}

#[test]
fn rewind_replays_the_run_bit_for_bit_and_the_archive_is_trains_run_directory() {
    let s = Server::start(&[]);
    let settings =
        json!({"steps": 40, "eval_every": 1, "init": "xavier_uniform", "act": "tanh", "lr": 0.5});
    let id = s.session(settings);
    let mut ev = s.events(&id);
    let first = run_to_end(&s, &id, &mut ev);
    assert_eq!(first.len(), 41, "an evaluation per step and the final one");
    s.control(&id, json!({"action": "rewind"}));
    let state = ev.until(Duration::from_secs(10), |e, v| {
        (e == "state").then(|| v.clone())
    });
    assert_eq!(state["step"], json!(0));
    let second = run_to_end(&s, &id, &mut ev);
    // The losses at full precision, exactly.
    assert_eq!(first[..20], second[..20]);
    assert_eq!(first, second);

    // The archive: the run directory of `initscope train` with the same flags.
    let mut zip = archive(&s, &id);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().rsplit('/').next().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        files.insert(name, bytes);
    }
    let command = state["command"].as_str().unwrap();
    let args: Vec<&str> = command
        .strip_prefix("initscope train ")
        .unwrap()
        .split(' ')
        .collect();
    let dir = std::env::temp_dir().join(format!("initscope-serve-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_initscope"))
        .arg("train")
        .args(&args)
        .args(["--quiet", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), on_disk);
    for name in [
        "config.json",
        "metrics.csv",
        "weights.safetensors",
        "histograms.json",
    ] {
        let disk = std::fs::read(dir.join(name)).unwrap();
        assert!(files[name] == disk, "{name} differs from train --out's");
    }
    // The summary, timing aside.
    let strip = |b: &[u8]| {
        let mut v: Value = serde_json::from_slice(b).unwrap();
        for k in ["wall_seconds", "samples_per_second"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(
        strip(&files["summary.json"]),
        strip(&std::fs::read(dir.join("summary.json")).unwrap())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_sessions_train_side_by_side_without_interfering() {
    let s = Server::start(&[]);
    let a = s.session(json!({"steps": 300, "init": "zeros"}));
    let b = s.session(json!({"steps": 300, "init": "pytorch", "seed": 3}));
    let (mut ea, mut eb) = (s.events(&a), s.events(&b));
    for id in [&a, &b] {
        s.control(id, json!({"action": "speed", "steps_per_second": null}));
        s.control(id, json!({"action": "play"}));
    }
    let ra = run_to_end(&s, &a, &mut ea);
    let rb = run_to_end(&s, &b, &mut eb);
    // Each equals the same run alone.
    let solo = Server::start(&[]);
    let a2 = solo.session(json!({"steps": 300, "init": "zeros"}));
    let mut e2 = solo.events(&a2);
    assert_eq!(ra, run_to_end(&solo, &a2, &mut e2));
    let b2 = solo.session(json!({"steps": 300, "init": "pytorch", "seed": 3}));
    let mut e2 = solo.events(&b2);
    assert_eq!(rb, run_to_end(&solo, &b2, &mut e2));
    assert_ne!(ra.last(), rb.last());
}

#[test]
fn a_session_ends_when_its_page_goes_away() {
    let s = Server::start(&["--idle-seconds", "1"]);
    let status = || s.api("GET", "/api/status", None).1;
    let id = s.session(json!({"steps": 100000}));
    let mut ev = s.events(&id);
    assert_eq!(ev.next().0, "state");
    s.control(&id, json!({"action": "play"}));
    let v = status();
    assert_eq!(v["sessions"], json!(1));
    assert_eq!(v["threads"], json!(2), "a trainer and a worker");
    drop(ev);
    let t = Instant::now();
    while status()["threads"] != json!(0) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "threads left: {}",
            status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status()["sessions"], json!(0));
    // A deleted session's threads end at once.
    let id = s.session(json!({}));
    let (code, _) = s.api("DELETE", &format!("/api/sessions/{id}"), None);
    assert_eq!(code, 204);
    assert_eq!(status()["threads"], json!(0));
    let (code, _) = s.api("GET", &format!("/api/sessions/{id}/events"), None);
    assert_eq!(code, 404);
}

#[test]
fn the_page_reads_the_symmetry_classes_the_grid_and_a_unit() {
    let s = Server::start(&[]);
    let id = s.session(json!({"init": "zeros", "steps": 50}));
    let mut ev = s.events(&id);
    let (_, state) = run_to_end_with_update(&s, &id, &mut ev);
    let verdict = ev.until(Duration::from_secs(60), |e, v| {
        (e == "verdict").then(|| v.clone())
    });
    assert_eq!(verdict["verdict"], json!("dead"), "{verdict}");
    assert_eq!(verdict["step"], json!(50));
    assert!(verdict["command"].as_str().unwrap().ends_with("--steps 50"));
    // W = 0 with tanh: one class per hidden layer.
    for l in &state["layers"].as_array().unwrap()[..2] {
        let classes = l["classes"].as_array().unwrap();
        assert_eq!(classes.len(), 16);
        assert!(classes.iter().all(|c| c == &json!(0)), "{l}");
        assert_eq!(l["width_tol"], json!(1));
    }
    let grid = &state["grid"];
    assert_eq!(grid["res"], json!(48));
    let (code, unit) = s.api(
        "GET",
        &format!("/api/sessions/{id}/unit?layer=1&unit=3"),
        None,
    );
    assert_eq!(code, 200, "{unit}");
    assert_eq!(unit["weights"].as_array().unwrap().len(), 2);
    assert_eq!(unit["activation"]["kind"], json!("grid"));
    assert_eq!(
        unit["activation"]["values"].as_array().unwrap().len(),
        48 * 48
    );
    let (code, ex) = s.api("GET", &format!("/api/sessions/{id}/explain"), None);
    assert_eq!(code, 200, "{ex}");
    assert!(ex["markdown"].as_str().unwrap().contains("dead"), "{ex}");
}

/// The answer to `method path` with `body` (raw text) and `content_type`, the bearer token.
fn raw_api(s: &Server, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {}", s.token);
    let r = request(
        &s.host,
        method,
        path,
        &[("Authorization", &auth), ("Content-Type", content_type)],
        Some(body),
    );
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

#[test]
fn a_settings_value_is_never_read_as_another_flag() {
    let s = Server::start(&[]);
    let bad = |settings: Value| s.refused(settings);
    // A switch's value was the next argument: `--no-bias --init-from=FILE` read the file.
    for v in [
        json!("--init-from=/etc/passwd"),
        json!("--data-dir=/etc"),
        json!("true"),
        json!(1),
    ] {
        let e = bad(json!({"init": null, "no_bias": v}));
        assert!(e.contains("'no_bias' must be true or false"), "{e}");
        let e = bad(json!({ "standardize": v }));
        assert!(e.contains("'standardize' must be true or false"), "{e}");
    }
    // A value is its flag's, whatever it starts with: the CLI's message for `--flag=value`.
    for (key, flag) in [
        ("layer_init", "--layer-init"),
        ("hidden", "--hidden"),
        ("init", "--init"),
        ("net", "--net"),
    ] {
        let v = "--init-from=/etc/passwd";
        let e = bad(json!({ key: v }));
        assert!(
            !e.contains("safetensors") && !e.contains("/etc/passwd:"),
            "{e}"
        );
        if key != "net" {
            assert_eq!(e, cli_error(&[&format!("{flag}={v}")]), "{key}");
        }
    }
    // A spec with a built-in name that `--data` reads as a file.
    for spec in ["moons:x.csv", "moons:/etc/passwd.npz", "blobs:a.CSV"] {
        let e = bad(json!({ "data": spec }));
        assert!(e.contains("built-in data sets"), "{spec}: {e}");
    }
    // Switches as booleans still work.
    let (status, v) = s.api(
        "POST",
        "/api/sessions",
        Some(&json!({"settings": {"no_bias": true, "standardize": false}})),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        v["command"].as_str().unwrap().contains(" --no-bias "),
        "{v}"
    );
}

#[test]
fn bad_request_bodies_get_one_json_line() {
    let s = Server::start(&[]);
    let id = s.session(json!({"steps": 10}));
    let _ev = s.events(&id);
    let control = format!("/api/sessions/{id}/control");
    let settings = format!("/api/sessions/{id}/settings");
    let json_type = "application/json";
    for (method, path, ctype, body, code) in [
        ("POST", "/api/sessions", json_type, "{", 400),
        ("POST", "/api/sessions", json_type, "{\"settings\": 5}", 400),
        ("POST", "/api/sessions", json_type, "null", 400),
        ("POST", "/api/sessions", json_type, "{\"setings\": {}}", 400),
        ("POST", "/api/sessions", "text/plain", "{}", 415),
        (
            "POST",
            control.as_str(),
            json_type,
            "{\"action\": \"step\", \"steps\": -1}",
            400,
        ),
        (
            "POST",
            control.as_str(),
            json_type,
            "{\"action\": \"play\", \"bogus\": 1}",
            400,
        ),
        ("POST", control.as_str(), json_type, "", 400),
        ("PUT", settings.as_str(), json_type, "[1]", 400),
        ("PUT", settings.as_str(), "text/plain", "{}", 415),
    ] {
        let (status, v) = raw_api(&s, method, path, ctype, body);
        assert_eq!(status, code, "{method} {path} {body}: {v}");
        let e = v["error"].as_str().unwrap_or_else(|| panic!("{body}: {v}"));
        assert!(
            e.starts_with("initscope: error: ") && !e.contains('\n'),
            "{e}"
        );
    }
    // No body at all: the default settings.
    let (status, v) = raw_api(&s, "POST", "/api/sessions", json_type, "");
    assert_eq!(status, 200, "{v}");
    // Settings are small; a big body is refused before it is read whole.
    let big = format!(
        "{{\"settings\": {{\"hidden\": \"{}\"}}}}",
        "1".repeat(200_000)
    );
    let (status, v) = raw_api(&s, "POST", "/api/sessions", json_type, &big);
    assert_eq!(status, 413, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("initscope: error: "));
}

#[test]
fn sessions_created_at_once_stay_within_max_sessions() {
    let s = Server::start(&["--max-sessions", "3"]);
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    s.api(
                        "POST",
                        "/api/sessions",
                        Some(&json!({"settings": {"data": "mnist1d"}})),
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 3, "{codes:?}");
    assert!(codes.iter().all(|&c| c == 200 || c == 503), "{codes:?}");
    assert_eq!(s.api("GET", "/api/status", None).1["sessions"], json!(3));
}

#[test]
fn a_huge_speed_is_full_speed() {
    let s = Server::start(&[]);
    let id = s.session(json!({"steps": 100000}));
    let mut ev = s.events(&id);
    assert_eq!(ev.next().0, "state");
    s.control(&id, json!({"action": "speed", "steps_per_second": 1e300}));
    s.control(&id, json!({"action": "play"}));
    std::thread::sleep(Duration::from_millis(500));
    let v = s.control(&id, json!({"action": "pause"}));
    assert_eq!(v["status"], json!("paused"));
    assert!(v["step"].as_u64().unwrap() > 10, "{v}");
}

#[test]
fn a_long_step_leaves_the_session_answering() {
    let s = Server::start(&[]);
    let id = s.session(json!({"steps": 100000, "hidden": "64,64,64"}));
    let mut ev = s.events(&id);
    assert_eq!(ev.next().0, "state");
    std::thread::scope(|scope| {
        let step = scope.spawn(|| s.control(&id, json!({"action": "step", "steps": 100000})));
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let paused = s.control(&id, json!({"action": "pause"}));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "pause took {:?}",
            t.elapsed()
        );
        // The step's answer comes when the pause cuts it short.
        let stepped = step.join().unwrap();
        assert_eq!(stepped["status"], json!("paused"), "{stepped}");
        let n = stepped["step"].as_u64().unwrap();
        assert!(n > 0 && n < 100000, "{stepped}");
        assert_eq!(paused["step"], stepped["step"]);
    });
    // A short step answers when its updates are taken.
    let before = s.control(&id, json!({"action": "pause"}))["step"]
        .as_u64()
        .unwrap();
    let v = s.control(&id, json!({"action": "step", "steps": 7}));
    assert_eq!(v["step"].as_u64().unwrap(), before + 7, "{v}");
    assert_eq!(v["status"], json!("paused"));
}

#[test]
fn a_session_ends_at_once_while_it_explains_a_long_run() {
    let s = Server::start(&[]);
    let status = || s.api("GET", "/api/status", None).1;
    let id = s.session(json!({"steps": 100000, "hidden": "64,64,64"}));
    let _ev = s.events(&id);
    std::thread::scope(|scope| {
        let explain = scope.spawn(|| s.api("GET", &format!("/api/sessions/{id}/explain"), None));
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let (code, _) = s.api("DELETE", &format!("/api/sessions/{id}"), None);
        assert_eq!(code, 204);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "delete took {:?}",
            t.elapsed()
        );
        assert_eq!(status()["threads"], json!(0));
        let (code, v) = explain.join().unwrap();
        assert_eq!(code, 404, "{v}");
    });
}

#[test]
fn a_run_whose_loss_is_not_finite_at_step_0_is_over_with_a_verdict() {
    let s = Server::start(&[]);
    let id = s.session(json!({"act": "identity", "init": "constant:1e30", "steps": 50}));
    let mut ev = s.events(&id);
    let (e, state) = ev.next();
    assert_eq!(e, "state");
    assert_eq!(state["status"], json!("diverged"), "{state}");
    let verdict = ev.until(Duration::from_secs(60), |e, v| {
        (e == "verdict").then(|| v.clone())
    });
    assert_eq!(verdict["step"], json!(0));
    assert_eq!(verdict["learning"], json!("diverged"), "{verdict}");
    let v = s.control(&id, json!({"action": "play"}));
    assert_eq!(v["status"], json!("diverged"));
}

#[test]
fn event_streams_of_a_session_are_bounded() {
    let s = Server::start(&[]);
    let id = s.session(json!({}));
    let mut open: Vec<_> = (0..8).map(|_| s.events(&id)).collect();
    let (code, v) = s.api("GET", &format!("/api/sessions/{id}/events"), None);
    assert_eq!(code, 429, "{v}");
    open.pop();
    // The closed stream's place is free again (once the server saw it close).
    let t = Instant::now();
    while stream_status(&s, &id) != 200 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status of a request for the event stream of `id` (the stream is closed at once).
fn stream_status(s: &Server, id: &str) -> u16 {
    use std::io::{BufRead as _, Write as _};
    let mut c = std::net::TcpStream::connect(&s.host).unwrap();
    write!(
        c,
        "GET /api/sessions/{id}/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        s.host, s.token
    )
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(c).read_line(&mut line).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_cookie_is_the_servers_own_and_every_address_names_a_server_on_all() {
    let s = Server::start(&[]);
    let port = s.host.rsplit(':').next().unwrap();
    let r = request(&s.host, "GET", &format!("/?token={}", s.token), &[], None);
    let set = r.header("set-cookie").expect("a cookie");
    // Browsers keep cookies per host, not per port: two servers must not share one.
    assert!(
        set.starts_with(&format!("initscope_token_{port}=")),
        "{set}"
    );

    // Listening on every address: reached by any of the machine's addresses, never by a name
    // other than localhost.
    let all = Server::start(&["--host", "0.0.0.0"]);
    assert!(all.host.starts_with("127.0.0.1:"), "{}", all.host);
    let port = all.host.rsplit(':').next().unwrap();
    let auth = format!("Bearer {}", all.token);
    for (host, code) in [
        (format!("192.0.2.7:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("evil.example:{port}"), 403),
        ("192.0.2.7:1".to_string(), 403),
    ] {
        let r = request(
            &all.host,
            "GET",
            "/api/options",
            &[("Host", &host), ("Authorization", &auth)],
            None,
        );
        assert_eq!(r.status, code, "{host}: {}", r.text());
    }
    let own = format!("http://192.0.2.7:{port}");
    let r = request(
        &all.host,
        "GET",
        "/api/options",
        &[
            ("Host", &format!("192.0.2.7:{port}")),
            ("Origin", &own),
            ("Authorization", &auth),
        ],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_run_that_diverged_in_an_update_archives_as_train_runs_it() {
    let s = Server::start(&[]);
    // The loss of a minibatch is not finite at an update between two evaluations.
    let settings = json!({"act": "relu", "init": "he_normal", "lr": 1e4, "batch": 7,
                          "eval_every": 50, "steps": 500});
    let id = s.session(settings);
    let mut ev = s.events(&id);
    let (_, state) = ev.next();
    let (_, last) = run_to_end_with_update(&s, &id, &mut ev);
    assert_eq!(last["status"], json!("diverged"), "{last}");
    let verdict = ev.until(Duration::from_secs(60), |e, v| {
        (e == "verdict").then(|| v.clone())
    });
    assert_eq!(verdict["step"], last["step"]);
    // The run's own command: `--steps 3` would end in an evaluation, not a failed update.
    let command = verdict["command"].as_str().unwrap();
    assert!(command.ends_with(" --steps 500"), "{command}");
    let mut zip = archive(&s, &id);
    let name = zip
        .file_names()
        .find(|n| n.ends_with("/summary.json"))
        .unwrap()
        .to_string();
    let mut summary = Vec::new();
    zip.by_name(&name)
        .unwrap()
        .read_to_end(&mut summary)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("initscope-serve-diverged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let command = state["command"].as_str().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_initscope"))
        .arg("train")
        .args(command.strip_prefix("initscope train ").unwrap().split(' '))
        .args(["--quiet", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let strip = |b: &[u8]| {
        let mut v: Value = serde_json::from_slice(b).unwrap();
        for k in ["wall_seconds", "samples_per_second"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let disk = std::fs::read(dir.join("summary.json")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(strip(&summary), strip(&disk));
}

/// Bad limits and data files stop the server at start: one line, exit code 2, no URL printed.
#[test]
fn bad_serve_flags_stop_the_server_at_start() {
    for (args, needle) in [
        (
            &["--max-work", "nan"][..],
            "--max-work: must be a finite number > 0, got NaN",
        ),
        (
            &["--max-work=-1"][..],
            "--max-work: must be a finite number > 0, got -1",
        ),
        (
            &["--max-sessions", "0"][..],
            "--max-sessions: must be at least 1",
        ),
        (&["--max-width", "0"][..], "--max-width: must be at least 1"),
        (
            &["--data", "csv:/nonexistent/x.csv"][..],
            "--data 'csv:/nonexistent/x.csv': /nonexistent/x.csv",
        ),
        (
            &["--data", "moons:n=30000"][..],
            "--data 'moons:n=30000': the data has",
        ),
    ] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_initscope"))
            .args(["serve", "--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: printed a URL");
    }
}
