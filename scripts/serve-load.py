#!/usr/bin/env python3
"""Speed and load figures of `initscope serve`, measured against 127.0.0.1 (standard library only).

    python3 scripts/serve-load.py [--bin target/release/initscope] [--sessions 20] [--seconds 20]

speed: one session of a 2-16-16-2 tanh net on moons (256 points, full batch) at full speed, the
       server pinned to one core (taskset), 5 rounds: steps per second and updates per second
       received by the client.
load:  N sessions training at once at full speed for a bounded time (the moons net, then the
       heaviest mnist1d net the default work limit admits); each session's event
       stream is read by one light reader thread, and a control action (pause, play, speed change) is
       sent to a random session every 50 ms. Reports the updates per second each session got
       (per one-second window: the minimum over all windows and sessions), the control
       latency (p50, p99, max), the server's peak memory (VmHWM) and thread count.
Exit code 1 when a target of the issue is missed (>= 30 updates/s and >= 2000 steps/s for one
session; >= 2 updates/s per session and p99 control latency < 200 ms under load).
"""

import argparse
import http.client
import json
import random
import selectors
import shutil
import socket
import statistics
import subprocess
import threading
import time


def start(binary, pin=None, extra=()):
    cmd = [binary, "serve", "--port", "0", *extra]
    if pin is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(pin), *cmd]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    url = p.stdout.readline().split()[2]
    host, token = url[len("http://"):].split("/?token=")
    return p, host, token


class Client:
    def __init__(self, host, token):
        self.host, self.token = host, token

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection(self.host, timeout=60)
        headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {data[:200]!r}")
        return json.loads(data) if data else None


def stream(client, sid, stamps, stop, steps=None):
    """Reads a session's events; appends the arrival time of every update (and its step)."""
    c = http.client.HTTPConnection(client.host, timeout=60)
    c.request("GET", f"/api/sessions/{sid}/events", headers={"Authorization": "Bearer " + client.token})
    r = c.getresponse()
    event = None
    while not stop.is_set():
        line = r.readline()
        if not line:
            break
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: ") and event == b"update":
            stamps.append(time.monotonic())
            if steps is not None:
                # "step": N is the first key the page needs; read it without parsing the rest.
                i = line.find(b'"step":')
                if i >= 0:
                    j = i + 7
                    k = j
                    while line[k:k + 1].isdigit():
                        k += 1
                    steps.append((time.monotonic(), int(line[j:k])))
    c.close()


SETTINGS = {"data": "moons:n=256", "hidden": "16,16", "act": "tanh", "batch": "full",
            "steps": 100000, "eval_every": 10}


def speed_round(binary, seconds=3.0):
    p, host, token = start(binary, pin=0)
    try:
        cl = Client(host, token)
        sid = cl.call("POST", "/api/sessions", {"settings": SETTINGS})["id"]
        stamps, steps, stop = [], [], threading.Event()
        t = threading.Thread(target=stream, args=(cl, sid, stamps, stop, steps), daemon=True)
        t.start()
        time.sleep(0.3)
        cl.call("POST", f"/api/sessions/{sid}/control", {"action": "speed", "steps_per_second": None})
        cl.call("POST", f"/api/sessions/{sid}/control", {"action": "play"})
        time.sleep(seconds)
        stop.set()
        # Skip the first half second (the run warming up).
        t0 = steps[0][0] + 0.5
        window = [(ts, s) for ts, s in steps if ts >= t0]
        dt = window[-1][0] - window[0][0]
        return (window[-1][1] - window[0][1]) / dt, (len(window) - 1) / dt
    finally:
        p.terminate()
        p.wait()


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


HEAVY = {"data": "mnist1d", "hidden": "64,64,64,64", "batch": 64, "steps": 100000, "eval_every": 10}


def open_stream(client, sid):
    """A raw socket reading a session's event stream (non-blocking)."""
    host, port = client.host.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall((f"GET /api/sessions/{sid}/events HTTP/1.1\r\nHost: {client.host}\r\n"
                  f"Authorization: Bearer {client.token}\r\n\r\n").encode())
    sock.setblocking(False)
    return sock


def load(binary, sessions, seconds, settings=None):
    p, host, token = start(binary, extra=["--max-sessions", str(max(sessions, 32))])
    try:
        cl = Client(host, token)
        base = settings or SETTINGS
        ids = [cl.call("POST", "/api/sessions", {"settings": dict(base, seed=i)})["id"] for i in range(sessions)]
        # One thread reads every stream and only counts "event: update" (a light client, so the
        # measurement takes little of the 2 cores the server shares with it).
        sel = selectors.DefaultSelector()
        stamps = {sid: [] for sid in ids}
        tails = {}
        for sid in ids:
            sel.register(open_stream(cl, sid), selectors.EVENT_READ, sid)
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                for key, _ in sel.select(timeout=0.1):
                    try:
                        data = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    buf = tails.get(key.data, b"") + data
                    n = buf.count(b"event: update")
                    now = time.monotonic()
                    stamps[key.data].extend([now] * n)
                    tails[key.data] = buf[-16:]

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.5)
        for sid in ids:
            cl.call("POST", f"/api/sessions/{sid}/control", {"action": "speed", "steps_per_second": None})
            cl.call("POST", f"/api/sessions/{sid}/control", {"action": "play"})
        start_t = time.monotonic()
        latencies = []
        rng = random.Random(0)
        threads_max = 0
        while time.monotonic() - start_t < seconds:
            sid = rng.choice(ids)
            # A pause answered (with the step it stopped at), then play again; a speed change
            # now and then.
            for body in ({"action": "pause"}, {"action": "play"}) if rng.random() < 0.8 else (
                    {"action": "speed", "steps_per_second": None},):
                t0 = time.monotonic()
                cl.call("POST", f"/api/sessions/{sid}/control", body)
                latencies.append(time.monotonic() - t0)
            threads_max = max(threads_max, vm(p.pid, "Threads"))
            time.sleep(0.05)
        end_t = time.monotonic()
        stop.set()
        t.join()
        # Updates per one-second window, per session (windows inside the measured time).
        per_window = []
        for sid in ids:
            ts = stamps[sid]
            w = start_t + 1.0
            while w + 1.0 <= end_t:
                per_window.append(sum(1 for x in ts if w <= x < w + 1.0))
                w += 1.0
        rates = [len([x for x in stamps[sid] if start_t <= x < end_t]) / (end_t - start_t) for sid in ids]
        latencies.sort()
        hwm = vm(p.pid, "VmHWM") / 1024
        with open("/proc/loadavg") as f:
            loadavg = f.read().split()[0]
        return {
            "sessions": sessions,
            "seconds": round(end_t - start_t, 1),
            "updates_per_s_min_window": min(per_window),
            "updates_per_s_median_session": round(statistics.median(rates), 1),
            "control_requests": len(latencies),
            "control_p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "control_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
            "control_max_ms": round(1000 * latencies[-1], 1),
            "peak_rss_mib": round(hwm, 1),
            "threads_max": threads_max,
            "loadavg_1min_at_end": loadavg,
        }
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/initscope")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    ok = True
    sps, ups = [], []
    for _ in range(a.rounds):
        s, u = speed_round(a.bin)
        sps.append(s)
        ups.append(u)
    print(json.dumps({
        "speed": "one session, 2-16-16-2 tanh, moons 256 points full batch, server on one core",
        "steps_per_s_median": round(statistics.median(sps)), "steps_per_s_range": [round(min(sps)), round(max(sps))],
        "updates_per_s_median": round(statistics.median(ups), 1), "updates_per_s_range": [round(min(ups), 1), round(max(ups), 1)],
    }))
    ok &= statistics.median(sps) >= 2000 and statistics.median(ups) >= 30
    r = load(a.bin, a.sessions, a.seconds)
    print(json.dumps(r))
    ok &= r["updates_per_s_min_window"] >= 2 and r["control_p99_ms"] < 200
    # The same load with the heaviest nets the default --max-work admits on mnist1d
    # (40-64-64-64-64-10, batch 64: an evaluation of the 5000 rows is 1.5e8 operations).
    r = load(a.bin, a.sessions, a.seconds, HEAVY)
    print(json.dumps(dict(r, settings=HEAVY)))
    ok &= r["updates_per_s_min_window"] >= 2 and r["control_p99_ms"] < 200
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
