// initscope serve: the page. Plain JS (ES2020), no build step; uPlot is the only library.
// Contract with the server: serve-api.md (endpoints, JSON shapes, element ids).
"use strict";
(() => {
  // ---------------------------------------------------------------- constants
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  // Symmetry classes of hidden units: Tableau 10 + 2, cycled.
  const UNIT_COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#17becf", "#bcbd22", "#7f7f7f"];
  // Data labels (boundary, points).
  const DATA_COLORS = ["#3a78c2", "#ee8a2b", "#4fa153", "#d9534f", "#9467bd", "#6bbcb7",
    "#e0c13c", "#f08fa6", "#8c6d5a", "#9aa0a6"];
  const POS = "#2d7dd2", NEG = "#ef8a17", NEUTRAL = "#c9ced6";
  const MAX_NODES = 32;
  const KNOWN = ["data", "hidden", "act", "net", "preset", "init", "bias_init", "layer_init",
    "layer_bias_init", "no_bias", "loss", "optim", "lr", "momentum", "weight_decay", "schedule",
    "warmup", "clip_grad_norm", "batch", "steps", "dropout", "grad_noise", "seed", "precision",
    "eval_every", "standardize"];
  const NUMERIC = new Set(["lr", "momentum", "steps", "dropout", "grad_noise", "seed", "eval_every",
    "beta1", "beta2", "eps", "alpha", "weight_decay", "warmup", "clip_grad_norm", "epochs",
    "sym_tol", "test_fraction", "val_fraction"]);
  const BOOLEAN = new Set(["no_bias", "jacobian_end", "standardize"]);
  const ARRAYS = new Set(["layer_init", "layer_bias_init"]);
  // Built-in dataset defaults (initscope's data/synthetic.rs, mnist1d.rs): n and noise.
  const DATA_DEFAULTS = {
    xor: { n: 4, noise: 0 }, moons: { n: 256, noise: 0.1 }, circles: { n: 256, noise: 0.05 },
    spirals: { n: 300, noise: 0.2 }, blobs: { n: 300, noise: 0 }, teacher: { n: 512, noise: 0 },
    mnist1d: { n: 5000 },
  };
  const LR_DEFAULT = { sgd: 0.1, momentum: 0.1, nesterov: 0.1, adam: 1e-3, adamw: 1e-3, rmsprop: 1e-2 };
  const OTHER = "__other__";

  // ---------------------------------------------------------------- state
  const app = {
    options: null, sessionId: null, state: null, evals: [], lastUpdate: null, lastVerdict: null,
    es: null, extras: {}, dataExtra: [], syncedSettings: null, selected: null,
    topoKey: null, net: null, charts: {}, dirty: { update: false, evals: false, verdict: false, state: false },
    rafPending: false, unitBusy: false, unitLast: 0, connError: false,
  };
  window.initscope = { sessionId: null, state: null, evals: [], lastUpdate: null, lastVerdict: null };
  const mirror = () => {
    const w = window.initscope;
    w.sessionId = app.sessionId; w.state = app.state; w.evals = app.evals;
    w.lastUpdate = app.lastUpdate; w.lastVerdict = app.lastVerdict;
  };

  // ---------------------------------------------------------------- helpers
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const sv = (tag, attrs = {}, text) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  };
  const fmtE = (x) => {
    if (x == null || Number.isNaN(x)) return "–";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return "0";
    return x.toExponential(1).replace("e+", "e");
  };
  const fmtN = (x, d = 3) => {
    if (x == null || !Number.isFinite(x)) return x == null ? "–" : String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return fmtE(x);
    return String(+x.toPrecision(d));
  };
  const fmtRate = (x) => {
    if (!x || !Number.isFinite(x)) return "";
    if (x >= 1e6) return (x / 1e6).toFixed(1) + "M steps/s";
    if (x >= 1e4) return (x / 1e3).toFixed(0) + "k steps/s";
    if (x >= 1e3) return (x / 1e3).toFixed(1) + "k steps/s";
    return x.toFixed(0) + " steps/s";
  };
  const finitePos = (x) => (typeof x === "number" && Number.isFinite(x) && x > 0 ? x : null);
  const finite = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  const hexRgb = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
  // Class c's colour: the qualitative palette for the first classes, then hues spaced by the
  // golden angle, so two distinct classes never share a colour (copies are what share one).
  const unitColor = (c) => {
    if (c == null || c < 0) return NEUTRAL;
    if (c < UNIT_COLORS.length) return UNIT_COLORS[c];
    const hue = (c * 137.508) % 360;
    const light = 40 + ((c * 7) % 3) * 12;
    return `hsl(${hue.toFixed(1)}, 55%, ${light}%)`;
  };
  const dataColor = (c) => DATA_COLORS[((c | 0) % DATA_COLORS.length + DATA_COLORS.length) % DATA_COLORS.length];
  // Diverging map for signed values t in [-1, 1]: blue (negative) - white - orange (positive).
  const DIV_NEG = hexRgb("#2166ac"), DIV_POS = hexRgb("#d6600b");
  const diverging = (t) => {
    t = Math.max(-1, Math.min(1, t || 0));
    const c = t < 0 ? DIV_NEG : DIV_POS, a = Math.abs(t);
    return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
  };
  const rgb = (c) => `rgb(${c[0] | 0},${c[1] | 0},${c[2] | 0})`;
  const b64bytes = (s) => {
    const bin = atob(s || ""), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  };
  const niceTicks = (lo, hi, n = 5) => {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(+v.toPrecision(10));
    return out;
  };

  // ---------------------------------------------------------------- messages
  function showError(msg, conn = false) {
    const e = $("error");
    e.textContent = msg || "";
    e.classList.toggle("shown", !!msg);
    app.connError = !!msg && conn;
  }
  function clearError() { showError(""); }

  // ---------------------------------------------------------------- HTTP
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let res;
    try { res = await fetch(path, init); } catch (e) { return { ok: false, status: 0, error: "server unreachable" }; }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      const error = (data && data.error) || (text && text.length < 300 ? text.trim() : "") || `HTTP ${res.status}`;
      return { ok: false, status: res.status, error, data };
    }
    return { ok: true, status: res.status, data };
  }

  // ---------------------------------------------------------------- settings <-> fragment
  function typed(k, v) {
    if (BOOLEAN.has(k)) return v === true || v === "true" || v === "1" || v === "";
    if (NUMERIC.has(k) && v !== "" && !Number.isNaN(Number(v))) return Number(v);
    if (k === "batch" && /^\d+$/.test(String(v))) return Number(v);
    return v;
  }
  function parseFragment(hash) {
    const h = (hash || "").replace(/^#/, "");
    if (!h) return null;
    const s = {};
    for (const part of h.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const dec = (x) => { try { return decodeURIComponent(x); } catch (e) { return x; } };
      const k = dec(i < 0 ? part : part.slice(0, i)).trim();
      const v = i < 0 ? "" : dec(part.slice(i + 1));
      if (!k || k === "token") continue; // never take a token from a link
      if (ARRAYS.has(k)) (s[k] = s[k] || []).push(v);
      else s[k] = typed(k, v);
    }
    return Object.keys(s).length ? s : null;
  }
  function toFragment(s) {
    const parts = [];
    const keys = KNOWN.filter((k) => k in s).concat(Object.keys(s).filter((k) => !KNOWN.includes(k)).sort());
    for (const k of keys) {
      if (k === "token") continue;
      const v = s[k];
      if (Array.isArray(v)) for (const x of v) parts.push(`${k}=${encodeURIComponent(x)}`);
      else parts.push(`${k}=${encodeURIComponent(String(v))}`);
    }
    // encodeURIComponent, with , : = ( ) left readable (parseFragment reads both forms)
    return parts.join("&").replace(/%2C/gi, ",").replace(/%3A/gi, ":").replace(/%3D/gi, "=");
  }
  // Tidy a settings object: drop empty values and the keys the other keys make moot.
  function tidy(src, keys) {
    const out = {};
    for (const k of keys) {
      const v = src[k];
      if (v == null) continue;
      if (k !== "hidden" && v === "") continue;
      if (Array.isArray(v) && !v.length) continue;
      if (BOOLEAN.has(k) && v === false) continue;
      if (typeof v === "number" && !Number.isFinite(v)) continue;
      out[k] = v;
    }
    if (out.net) { delete out.hidden; delete out.act; delete out.dropout; } else delete out.preset;
    if (out.optim && !["momentum", "nesterov"].includes(out.optim)) delete out.momentum;
    return out;
  }
  // Every setting of the running session (for the share link and the address bar).
  function currentSettings() {
    const keys = KNOWN.concat(Object.keys(app.extras).filter((k) => !KNOWN.includes(k)));
    if (!app.state || !app.state.settings) return tidy(Object.assign({}, app.extras, formSettings()), keys);
    const src = Object.assign({}, app.extras, app.state.settings);
    return tidy(src, keys);
  }

  // ---------------------------------------------------------------- controls
  function fillSelect(sel, items, { first } = {}) {
    sel.textContent = "";
    if (first) sel.appendChild(el("option", { value: first.value }, first.label));
    for (const it of items) {
      const o = typeof it === "string" ? el("option", { value: it }, it) : el("option", { value: it.name, title: it.doc || "" }, it.name);
      sel.appendChild(o);
    }
  }
  function setSelect(sel, v) {
    v = v == null ? "" : String(v);
    if (![...sel.options].some((o) => o.value === v) && v !== "") sel.appendChild(el("option", { value: v }, v));
    sel.value = v;
  }

  // An initializer chooser: a select of the known names (title = doc), a blank choice
  // ("(default)" or "(global)") and "other…", which shows a text field for a full spec.
  function specChooser(sel, other, blankLabel) {
    const names = app.options.inits.map((i) => i.name);
    fillSelect(sel, app.options.inits, { first: { value: "", label: blankLabel } });
    sel.appendChild(el("option", { value: OTHER }, "other…"));
    const sync = () => {
      other.hidden = sel.value !== OTHER;
      const doc = (app.options.inits.find((i) => i.name === sel.value) || {}).doc;
      sel.title = doc || (sel.value === OTHER ? "type a spec, e.g. constant:0.1 or normal:std=0.02" : blankLabel);
    };
    sel.addEventListener("change", () => {
      // a name whose first argument has no default (constant:value, sparse:sparsity, ...) needs a spec
      const it = app.options.inits.find((i) => i.name === sel.value);
      const first = it && it.args ? String(it.args).split(/[,|]/)[0].trim() : "";
      if (first && !first.includes("=")) { other.value = `${sel.value}:`; sel.value = OTHER; other.placeholder = `${it.name}:${it.args}`; }
      sync();
      if (sel.value === OTHER) other.focus();
    });
    const chooser = {
      get: () => (sel.value === OTHER ? other.value.trim() : sel.value),
      set: (v) => {
        v = v == null ? "" : String(v);
        if (v === "" || names.includes(v)) { sel.value = v; other.value = ""; } else { sel.value = OTHER; other.value = v; }
        sync();
      },
    };
    sync();
    return chooser;
  }

  let initChooser, biasChooser;
  const layerChoosers = []; // [{w, b}] per linear layer, 1-based index i+1

  function buildControls(opt) {
    fillSelect($("data"), opt.datasets);
    fillSelect($("act"), opt.activations);
    fillSelect($("loss"), opt.losses, { first: { value: "", label: "(default for the task)" } });
    fillSelect($("optim"), opt.optims);
    initChooser = specChooser($("init"), $("init-other"), "(default)");
    biasChooser = specChooser($("bias-init"), $("bias-init-other"), "(default)");
    const pres = $("presets");
    pres.textContent = "";
    if (opt.presets && opt.presets.length) {
      pres.appendChild(el("span", { class: "muted" }, "presets"));
      for (const p of opt.presets) {
        const b = el("button", { type: "button", class: "small", title: toFragment(p.settings || {}).replace(/&/g, "  ") }, p.label || p.name);
        b.dataset.preset = p.name;
        b.addEventListener("click", () => applyPreset(p));
        pres.appendChild(b);
      }
    }
    if (opt.defaults && opt.defaults.lr != null && opt.defaults.optim) LR_DEFAULT[opt.defaults.optim] = Number(opt.defaults.lr);
    if (opt.data_defaults && typeof opt.data_defaults === "object") Object.assign(DATA_DEFAULTS, opt.data_defaults);
    const lim = opt.limits || {};
    if (lim.max_steps) $("steps").max = lim.max_steps;
    if (lim.max_points) $("points").max = lim.max_points;

    $("data").addEventListener("change", () => { app.dataExtra = []; setDataDefaults($("data").value); });
    $("optim").addEventListener("change", onOptimChange);
    $("hidden").addEventListener("input", rebuildLayerTable);
    $("net").addEventListener("input", () => { netModeUI(); rebuildLayerTable(); });
    $("no-bias").addEventListener("change", noBiasUI);
    $("settings").addEventListener("input", markDirty);
    $("settings").addEventListener("change", markDirty);
    $("apply").addEventListener("click", applySettings);
    $("settings").addEventListener("submit", (e) => e.preventDefault());
    $("reset-form").addEventListener("click", () => { if (app.state) { app.syncedSettings = null; syncForm(app.state.settings); } });
    $("settings").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey || e.target.tagName === "INPUT")) { e.preventDefault(); applySettings(); }
    });
  }

  let prevOptim = null;
  function onOptimChange() {
    const o = $("optim").value, lr = $("lr");
    if (prevOptim != null && lr.value !== "" && Number(lr.value) === LR_DEFAULT[prevOptim] && LR_DEFAULT[o] != null) lr.value = LR_DEFAULT[o];
    prevOptim = o;
    momentumUI();
  }
  function momentumUI() {
    const on = ["momentum", "nesterov"].includes($("optim").value);
    $("momentum").disabled = !on;
    $("momentum-row").classList.toggle("off", !on);
  }
  function netModeUI() {
    const on = $("net").value.trim() !== "";
    for (const id of ["hidden", "act", "dropout"]) { $(id).disabled = on; $(id).closest("label").classList.toggle("off", on); }
    $("preset").disabled = !on;
    $("preset").closest("label").classList.toggle("off", !on);
  }
  function noBiasUI() {
    const off = $("no-bias").checked;
    $("bias-init").disabled = off; $("bias-init-other").disabled = off;
    for (const c of layerChoosers) { c.bsel.disabled = off; c.bother.disabled = off; }
  }

  // Data: name + n + noise (+ any other options kept from a link, e.g. seed=1).
  function parseData(spec) {
    spec = String(spec || "");
    const i = spec.indexOf(":");
    const name = i < 0 ? spec : spec.slice(0, i);
    const out = { name, n: null, noise: null, extra: [] };
    if (i >= 0) for (const kv of spec.slice(i + 1).split(",")) {
      if (!kv) continue;
      const [k, v] = kv.split("=");
      if (k === "n") out.n = Number(v); else if (k === "noise") out.noise = Number(v); else out.extra.push(kv);
    }
    return out;
  }
  function setDataDefaults(name) {
    const d = DATA_DEFAULTS[name] || {};
    $("points").value = d.n != null ? d.n : "";
    $("noise").value = d.noise != null ? d.noise : "";
    dataUI();
  }
  function dataUI() {
    const d = DATA_DEFAULTS[$("data").value];
    const noisy = !d || d.noise != null;
    $("noise").disabled = !noisy;
    $("noise").closest("label").classList.toggle("off", !noisy);
  }
  function buildData() {
    const name = $("data").value;
    const d = DATA_DEFAULTS[name] || {};
    const parts = [];
    const n = $("points").value.trim(), noise = $("noise").value.trim();
    if (n !== "" && Number(n) !== d.n) parts.push(`n=${Number(n)}`);
    if (!$("noise").disabled && noise !== "" && Number(noise) !== d.noise) parts.push(`noise=${Number(noise)}`);
    parts.push(...app.dataExtra);
    return parts.length ? `${name}:${parts.join(",")}` : name;
  }

  // Per-layer initializer overrides, one row per linear layer.
  function linearWidths() {
    // [fan_in of layer 1, width of 1, width of 2, ..., outputs] when known.
    const st = app.state;
    const net = $("net").value.trim();
    if (net) {
      if (st && st.settings && (st.settings.net || "") === net) return st.layers.map((l) => l.width);
      return null;
    }
    const hs = $("hidden").value.split(",").map((s) => s.trim()).filter(Boolean);
    if (hs.some((h) => !/^\d+$/.test(h))) return null;
    return [st ? st.inputs : "?", ...hs.map(Number), st ? st.outputs : "?"];
  }
  function rebuildLayerTable() {
    const keepW = layerChoosers.map((c) => c.w.get()), keepB = layerChoosers.map((c) => c.b.get());
    const widths = linearWidths();
    const tb = $("layer-inits").querySelector("tbody");
    tb.textContent = "";
    layerChoosers.length = 0;
    if (!widths) {
      const tr = el("tr"); const td = el("td", { colspan: 3, class: "muted" }, "layers are counted once the --net spec is applied");
      tr.appendChild(td); tb.appendChild(tr);
      return;
    }
    for (let l = 1; l < widths.length; l++) {
      const tr = el("tr");
      tr.appendChild(el("td", { class: "mono", title: `linear layer ${l}: ${widths[l - 1]} -> ${widths[l]}` }, `${l}`));
      const mk = (keep, kind) => {
        const td = el("td");
        const sel = el("select", { "data-layer": l, "data-kind": kind, "aria-label": `layer ${l} ${kind} init` });
        const other = el("input", { type: "text", class: "other", spellcheck: "false", placeholder: "spec", hidden: "" });
        td.appendChild(sel); td.appendChild(other); tr.appendChild(td);
        const ch = specChooser(sel, other, "(global)");
        ch.set(keep || "");
        return { ch, sel, other };
      };
      const w = mk(keepW[l - 1], "weight"), b = mk(keepB[l - 1], "bias");
      tr.firstChild.textContent = `${l}`;
      tr.firstChild.appendChild(el("span", { class: "muted dims" }, ` ${widths[l - 1]}→${widths[l]}`));
      layerChoosers.push({ w: w.ch, b: b.ch, bsel: b.sel, bother: b.other });
      tb.appendChild(tr);
    }
    noBiasUI();
  }
  function setLayerInits(li, lb) {
    const parse = (arr) => {
      const m = {};
      for (const e of arr || []) { const i = String(e).indexOf("="); if (i > 0) m[e.slice(0, i).trim()] = e.slice(i + 1); }
      return m;
    };
    const w = parse(li), b = parse(lb);
    layerChoosers.forEach((c, i) => { c.w.set(w[i + 1] || ""); c.b.set(b[i + 1] || ""); });
  }

  // The form -> a settings object (what Apply sends).
  function formSettings() {
    const s = {};
    const num = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); };
    s.data = buildData();
    const net = $("net").value.trim();
    if (net) { s.net = net; if ($("preset").value) s.preset = $("preset").value; } else {
      s.hidden = $("hidden").value.replace(/\s+/g, "");
      s.act = $("act").value;
      const d = num("dropout"); if (d !== undefined) s.dropout = d;
    }
    const wi = initChooser.get(); if (wi) s.init = wi;
    const nob = $("no-bias").checked;
    if (nob) s.no_bias = true; else { const bi = biasChooser.get(); if (bi) s.bias_init = bi; }
    const li = [], lb = [];
    layerChoosers.forEach((c, i) => {
      const w = c.w.get(), b = c.b.get();
      if (w) li.push(`${i + 1}=${w}`);
      if (b && !nob) lb.push(`${i + 1}=${b}`);
    });
    if (li.length) s.layer_init = li;
    if (lb.length) s.layer_bias_init = lb;
    if ($("loss").value) s.loss = $("loss").value;
    s.optim = $("optim").value;
    const lr = num("lr"); if (lr !== undefined) s.lr = lr;
    if (["momentum", "nesterov"].includes(s.optim)) { const m = num("momentum"); if (m !== undefined) s.momentum = m; }
    const b = $("batch").value.trim(); if (b) s.batch = /^\d+$/.test(b) ? Number(b) : b;
    const st = num("steps"); if (st !== undefined) s.steps = st;
    const gn = num("grad-noise"); if (gn !== undefined) s.grad_noise = gn;
    const seed = num("seed"); if (seed !== undefined) s.seed = seed;
    s.precision = $("precision").value;
    const ee = num("eval-every"); if (ee !== undefined) s.eval_every = ee;
    const wd = num("weight-decay"); if (wd !== undefined) s.weight_decay = wd;
    const sch = $("schedule").value.trim(); if (sch) s.schedule = sch;
    const wu = num("warmup"); if (wu !== undefined) s.warmup = wu;
    const cg = num("clip-grad-norm"); if (cg !== undefined) s.clip_grad_norm = cg;
    if ($("standardize").checked) s.standardize = true;
    for (const [k, v] of Object.entries(app.extras)) if (!(k in s) && !KNOWN.includes(k)) s[k] = v;
    return s;
  }

  // A settings object -> the form (missing keys take the defaults of /api/options).
  function fillForm(settings) {
    const s = Object.assign({}, app.options.defaults || {}, settings || {});
    const d = parseData(s.data || "moons");
    setSelect($("data"), d.name);
    const dd = DATA_DEFAULTS[d.name] || {};
    $("points").value = d.n != null ? d.n : (dd.n != null ? dd.n : "");
    $("noise").value = d.noise != null ? d.noise : (dd.noise != null ? dd.noise : "");
    app.dataExtra = d.extra;
    dataUI();
    $("hidden").value = s.hidden == null ? "" : String(s.hidden);
    if (s.act != null) setSelect($("act"), s.act);
    $("dropout").value = s.dropout != null ? s.dropout : "";
    $("net").value = s.net || "";
    setSelect($("preset"), s.preset || "");
    initChooser.set(s.init || "");
    biasChooser.set(s.bias_init || "");
    $("no-bias").checked = s.no_bias === true || s.no_bias === "true";
    setSelect($("loss"), s.loss || "");
    if (s.optim != null) setSelect($("optim"), s.optim);
    prevOptim = $("optim").value;
    $("lr").value = s.lr != null ? s.lr : (LR_DEFAULT[$("optim").value] ?? "");
    $("momentum").value = s.momentum != null ? s.momentum : 0.9;
    $("batch").value = s.batch != null ? s.batch : "";
    $("steps").value = s.steps != null ? s.steps : "";
    $("grad-noise").value = s.grad_noise != null ? s.grad_noise : "";
    $("seed").value = s.seed != null ? s.seed : "";
    setSelect($("precision"), s.precision || "f32");
    $("eval-every").value = s.eval_every != null ? s.eval_every : "";
    $("weight-decay").value = s.weight_decay != null ? s.weight_decay : "";
    $("schedule").value = s.schedule || "";
    $("warmup").value = s.warmup != null ? s.warmup : "";
    $("clip-grad-norm").value = s.clip_grad_norm != null ? s.clip_grad_norm : "";
    $("standardize").checked = s.standardize === true || s.standardize === "true";
    if (s.weight_decay != null || s.schedule || s.warmup != null || s.clip_grad_norm != null || $("standardize").checked) $("more-train").open = true;
    netModeUI(); momentumUI();
    rebuildLayerTable();
    setLayerInits(s.layer_init, s.layer_bias_init);
    noBiasUI();
    const ex = {};
    for (const [k, v] of Object.entries(settings || {})) if (!KNOWN.includes(k) && k !== "token") ex[k] = v;
    app.extras = Object.assign({}, ex);
  }
  function syncForm(settings) {
    const key = JSON.stringify(settings || {});
    if (key === app.syncedSettings) return;
    app.syncedSettings = key;
    const extras = app.extras;
    fillForm(settings);
    // keep flags a link gave that the server's settings object does not echo
    for (const [k, v] of Object.entries(extras)) if (!(k in app.extras) && !(settings && k in settings)) app.extras[k] = v;
    app.formBaseline = JSON.stringify(formSettings());
    markDirty();
  }
  function markDirty() {
    const d = app.formBaseline != null && JSON.stringify(formSettings()) !== app.formBaseline;
    $("apply").classList.toggle("attention", d);
    $("dirty").textContent = d ? "changed: Apply restarts the run" : "";
  }

  function applyPreset(p) {
    const cur = formSettings();
    const s = Object.assign({}, cur, p.settings || {});
    if ((p.settings || {}).net == null && !("net" in (p.settings || {}))) { /* keep the current network */ }
    fillForm(Object.assign({}, app.extras, s));
    markDirty();
    applySettings();
  }

  // ---------------------------------------------------------------- session
  async function createSession(settings, { fromLink = false } = {}) {
    const r = await api("POST", "/api/sessions", { settings });
    if (!r.ok) return r;
    app.sessionId = r.data.id;
    $("download").href = `/api/sessions/${encodeURIComponent(app.sessionId)}/archive`;
    app.hashPending = true;
    if (r.data.state) handleState(r.data.state); // else the first `state` event brings it
    else if (r.data.command) setCommand(r.data.command);
    openEvents();
    return r;
  }
  async function applySettings() {
    const s = formSettings();
    $("apply").disabled = true;
    try {
      let r;
      if (app.sessionId) {
        r = await api("PUT", `/api/sessions/${app.sessionId}/settings`, { settings: s });
        if (!r.ok && r.status === 404) { closeEvents(); app.sessionId = null; r = await createSession(s); }
        else if (r.ok) {
          app.hashPending = true;
          app.syncedSettings = null; // the settings echoed by the coming `state` event fill the form
          if (r.data && r.data.state) handleState(r.data.state);
        }
      } else r = await createSession(s);
      if (!r.ok) { showError(r.error); return; }
      clearError();
      app.formBaseline = JSON.stringify(formSettings());
      markDirty();
    } finally { $("apply").disabled = false; }
  }
  function writeHash() {
    try { history.replaceState(null, "", "#" + toFragment(currentSettings())); } catch (e) { /* ignore */ }
  }
  async function control(action, extra = {}) {
    if (!app.sessionId) return;
    const r = await api("POST", `/api/sessions/${app.sessionId}/control`, Object.assign({ action }, extra));
    if (!r.ok) {
      if (r.status === 404) { showError("the session ended on the server; starting a new one"); restartSession(); return; }
      showError(r.error); return;
    }
    if (!app.connError) clearError();
    if (r.data && r.data.status) setStatus(r.data.status, r.data.step);
  }
  async function restartSession() {
    closeEvents();
    app.sessionId = null;
    const r = await createSession(currentSettings());
    if (!r.ok) showError(r.error);
  }
  function closeEvents() { if (app.es) { app.es.close(); app.es = null; } }
  function openEvents() {
    closeEvents();
    const es = new EventSource(`/api/sessions/${encodeURIComponent(app.sessionId)}/events`);
    app.es = es;
    const parse = (ev) => { try { return JSON.parse(ev.data); } catch (e) { return null; } };
    es.addEventListener("state", (ev) => { const d = parse(ev); if (d) handleState(d); });
    es.addEventListener("update", (ev) => { const d = parse(ev); if (d) handleUpdate(d); });
    es.addEventListener("verdict", (ev) => { const d = parse(ev); if (d) handleVerdict(d); });
    es.addEventListener("fatal", (ev) => {
      const d = parse(ev);
      showError((d && d.error) || "the run could not start; change the settings");
      if (app.state) setStatus("failed");
    });
    es.onopen = () => { if (app.connError) clearError(); };
    es.onerror = () => {
      if (app.es !== es) return;
      showError("connection lost — reconnecting…", true);
      if (es.readyState === EventSource.CLOSED) setTimeout(() => { if (app.es === es) restartSession(); }, 2000);
    };
  }

  function handleState(st) {
    app.state = st;
    app.evals = (st.evals || []).slice();
    app.lastUpdate = st.update || null;
    app.lastVerdict = st.verdict || null;
    syncForm(st.settings);
    if (app.hashPending) { app.hashPending = false; writeHash(); }
    $("headline").textContent = st.headline || "";
    $("headline").title = (st.headline || "") + (st.run_id ? `\nrun id ${st.run_id}` : "");
    $("headline").hidden = !st.headline;
    app.dirty.state = true; app.dirty.update = true; app.dirty.evals = true; app.dirty.verdict = true;
    if (app.selected && !unitExists(app.selected)) app.selected = null;
    mirror();
    schedule();
    if (app.selected) fetchUnit(true);
  }
  function handleUpdate(u) {
    app.lastUpdate = u;
    if (u.evals && u.evals.length) {
      const last = app.evals.length ? app.evals[app.evals.length - 1].step : -Infinity;
      for (const e of u.evals) if (e.step > last || !app.evals.length) app.evals.push(e);
      app.dirty.evals = true;
    }
    if (app.state) { app.state.step = u.step; app.state.status = u.status; app.state.total = u.total; }
    app.dirty.update = true;
    mirror();
    schedule();
    if (app.selected) {
      const now = performance.now();
      if (u.status !== "running" || now - app.unitLast > 700) fetchUnit(false);
    }
  }
  function handleVerdict(v) {
    app.lastVerdict = v;
    if (app.state) app.state.verdict = v;
    app.dirty.verdict = true;
    mirror();
    schedule();
  }

  // ---------------------------------------------------------------- drawing loop
  function schedule() {
    if (app.rafPending) return;
    app.rafPending = true;
    requestAnimationFrame(frame);
  }
  function frame() {
    app.rafPending = false;
    const d = app.dirty;
    try {
      if (d.state) { buildNetwork(); resetCharts(); drawPointsLayer(); }
      if (d.update || d.state) { drawProgress(); updateNetwork(); drawBoundary(); }
      if (d.evals || d.state) updateCharts();
      if (d.verdict || d.state) drawVerdict();
      else if (d.update && app.lastVerdict) verdictStep();
    } catch (e) { console.error(e); }
    // For the browser tests (tests/serve/browser.rs): the time from navigation to the first
    // drawn state, as a performance mark.
    if (d.state && app.state && !app.firstDrawn) { app.firstDrawn = true; performance.mark("initscope-first-draw"); }
    d.state = d.update = d.evals = d.verdict = false;
  }

  function setStatus(status, step) {
    if (app.state) { app.state.status = status; if (step != null) app.state.step = step; }
    drawProgress();
  }
  function drawProgress() {
    const st = app.state, u = app.lastUpdate;
    if (!st) return;
    const step = u && u.step != null ? Math.max(u.step, 0) : st.step;
    const total = (u && u.total) || st.total || 0;
    const status = st.status || (u && u.status) || "paused";
    $("step-count").textContent = `step ${step} / ${total}`;
    $("speed").textContent = status === "running" && u ? fmtRate(u.steps_per_second) : "";
    const pill = $("status");
    pill.textContent = status;
    pill.className = "pill s-" + status;
    $("progress-fill").style.width = total ? `${Math.min(100, (100 * step) / total)}%` : "0";
    $("play").disabled = status === "running" || status === "done" || status === "diverged";
    $("pause").disabled = status !== "running";
    $("step").disabled = status === "done" || status === "diverged";
  }

  // ---------------------------------------------------------------- network (SVG)
  function buildNetwork() {
    const st = app.state;
    const svg = $("network");
    const layers = st ? st.layers || [] : [];
    const key = JSON.stringify(layers.map((l) => [l.layer, l.width, l.name, l.act, l.output])) + "|" + svg.clientWidth;
    if (key === app.topoKey && app.net) return;
    app.topoKey = key;
    svg.textContent = "";
    const W = svg.clientWidth || 560, H = svg.clientHeight || 470;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const top = 44, bottom = 60, left = 46, right = 58;
    const n = layers.length;
    const net = { cols: [], edges: [], W, H };
    app.net = net;
    if (!n) return;
    const gEdges = sv("g", { class: "edges" }), gNodes = sv("g", { class: "nodes" }), gText = sv("g", { class: "labels" });
    svg.appendChild(gEdges); svg.appendChild(gNodes); svg.appendChild(gText);
    const plotH = H - top - bottom - (layers.some((l) => l.width > MAX_NODES) ? 14 : 0);
    const xs = layers.map((_, i) => (n === 1 ? W / 2 : left + (i * (W - left - right)) / (n - 1)));
    // many layers: short column titles and bare numbers under the columns
    const spacing = n > 1 ? (W - left - right) / (n - 1) : W;
    net.compact = spacing < 44 ? 2 : spacing < 84 ? 1 : 0;
    svg.classList.toggle("compact", net.compact === 1);
    svg.classList.toggle("compact2", net.compact === 2);
    if (net.compact) ["layer", "units"].forEach((t, k) => gText.appendChild(sv("text", { x: 4, y: 14 + 14 * k, class: "stat-head" }, t)));
    layers.forEach((L, i) => {
      const shown = Math.min(L.width, MAX_NODES);
      const spacing = Math.min(30, plotH / Math.max(shown, 1));
      const r = Math.max(2.5, Math.min(9, spacing * 0.36));
      const y0 = top + plotH / 2 - (spacing * (shown - 1)) / 2;
      const col = { layer: L, x: xs[i], ys: [], r, circles: [], stats: null, classes: [] };
      for (let u = 0; u < shown; u++) col.ys.push(y0 + u * spacing);
      net.cols.push(col);
      // title over the column
      const kind = i === 0 ? "input" : L.output ? "output" : "hidden";
      const t1 = sv("text", { x: xs[i], y: 14, class: "col-title" }, net.compact ? (i === 0 ? "in" : kind === "output" ? `${L.layer}·out` : `${L.layer}`) : i === 0 ? "input" : L.name || `linear ${L.layer}`);
      const t2 = sv("text", { x: xs[i], y: 28, class: "col-sub" }, net.compact ? `${L.width}` : `${L.width}${i > 0 && L.act && L.act !== "identity" ? " · " + L.act : ""}${kind === "output" ? " · out" : ""}`);
      if (net.compact && i > 0) t1.appendChild(sv("title", {}, `${L.name || "linear " + L.layer}: ${L.width} units${L.act ? ", " + L.act : ""}`));
      gText.appendChild(t1); gText.appendChild(t2);
      if (L.width > shown) gText.appendChild(sv("text", { x: xs[i], y: col.ys[shown - 1] + r + 13, class: "more" }, `+${L.width - shown} more`));
      // stats under the column
      if (i > 0) {
        const by = H - bottom + 18;
        const g = sv("text", { x: xs[i], y: by, class: "stat" }, "");
        const w = sv("text", { x: xs[i], y: by + 15, class: "stat" }, "");
        const e = sv("text", { x: xs[i], y: by + 30, class: "stat" }, "");
        gText.appendChild(g); gText.appendChild(w); gText.appendChild(e);
        col.stats = { grad: g, wake: w, width: e };
      }
    });
    // row captions for the stats block
    if (n > 1) {
      const by = H - bottom + 18;
      ["‖grad‖", "wake", "width"].forEach((t, k) => gText.appendChild(sv("text", { x: 4, y: by + 15 * k, class: "stat-head" }, t)));
    }
    // edges (created once per topology; updated by attribute)
    for (let i = 1; i < n; i++) {
      const a = net.cols[i - 1], b = net.cols[i];
      const g = sv("g", { "data-layer": b.layer.layer });
      gEdges.appendChild(g);
      const lines = [];
      for (let r = 0; r < b.ys.length; r++) for (let c = 0; c < a.ys.length; c++) {
        const ln = sv("line", { x1: a.x + a.r, y1: a.ys[c], x2: b.x - b.r, y2: b.ys[r], stroke: NEUTRAL, "stroke-width": 0.6, "stroke-opacity": 0.35 });
        ln._rc = [r, c];
        g.appendChild(ln);
        lines.push(ln);
      }
      net.edges.push({ layer: b.layer.layer, lines, g, last: null });
    }
    // nodes
    net.cols.forEach((col, i) => {
      const L = col.layer;
      col.ys.forEach((y, u) => {
        const isIn = i === 0, isOut = !!L.output;
        const c = sv("circle", { cx: col.x, cy: y, r: col.r, class: "node" + (isIn ? " in" : isOut ? " out" : " hid") });
        if (!isIn) {
          c.setAttribute("data-layer", L.layer);
          c.setAttribute("data-unit", u);
          if (!isOut) c.setAttribute("data-class", 0);
          c.setAttribute("fill", isOut ? NEUTRAL : UNIT_COLORS[0]);
          c.appendChild(sv("title", {}, `${L.name || "linear " + L.layer}, unit ${u}`));
          c.addEventListener("click", () => selectUnit(L.layer, u));
        } else c.setAttribute("fill", "#ffffff");
        gNodes.appendChild(c);
        col.circles.push(c);
      });
      if (i === 0 && col.ys.length <= 8 && st.inputs <= 8) col.ys.forEach((y, u) => gText.appendChild(sv("text", { x: col.x - col.r - 5, y: y + 4, class: "io-label end" }, `x${u + 1}`)));
      if (L.output && col.ys.length <= 12) col.ys.forEach((y, u) => gText.appendChild(sv("text", { x: col.x + col.r + 5, y: y + 4, class: "io-label" }, st.task === "regression" ? `y${col.ys.length > 1 ? u + 1 : ""}` : `${u}`)));
    });
    markSelected();
  }

  function updateNetwork() {
    const net = app.net, u = app.lastUpdate;
    if (!net || !u) return;
    const byLayer = new Map((u.layers || []).map((l) => [l.layer, l]));
    for (const col of net.cols) {
      const L = col.layer;
      if (!L.layer) continue;
      const info = byLayer.get(L.layer);
      if (!info) continue;
      if (!L.output && Array.isArray(info.classes)) {
        col.circles.forEach((c, k) => {
          const cl = info.classes[k];
          if (col.classes[k] !== cl) {
            col.classes[k] = cl;
            c.setAttribute("data-class", cl);
            c.setAttribute("fill", unitColor(cl));
            c.firstChild.textContent = `${L.name || "linear " + L.layer}, unit ${k}, class ${cl}`;
          }
        });
      }
      if (col.stats) {
        const c = net.compact;
        col.stats.grad.textContent = c && info.grad_norm ? info.grad_norm.toExponential(0).replace("e+", "e") : fmtE(info.grad_norm);
        col.stats.grad.classList.toggle("zero", info.grad_norm === 0);
        col.stats.wake.textContent = info.wake == null ? (c ? "–" : "asleep") : c ? `${info.wake}` : `wake ${info.wake}`;
        col.stats.wake.classList.toggle("asleep", info.wake == null);
        const wt = info.width_tol != null ? info.width_tol : info.width_exact;
        col.stats.width.textContent = wt != null ? (c ? `${wt}/${L.width}` : `w ${wt}/${L.width}`) : "";
        col.stats.width.classList.toggle("narrow", wt != null && wt < L.width);
        if (!c && info.width_exact != null && info.width_exact !== wt) col.stats.width.textContent += ` (exact ${info.width_exact})`;
      }
    }
    const byW = new Map((u.weights || []).map((w) => [w.layer, w]));
    for (const e of net.edges) {
      const w = byW.get(e.layer);
      if (!w) {
        if (e.last !== "none") { for (const ln of e.lines) { ln.setAttribute("stroke", NEUTRAL); ln.setAttribute("stroke-width", 0.5); ln.setAttribute("stroke-opacity", 0.18); } e.last = "none"; }
        continue;
      }
      e.last = "w";
      const vals = w.values;
      const dens = Math.sqrt(Math.min(1, 256 / Math.max(e.lines.length, 1)));
      let m = 0;
      for (let k = 0; k < vals.length; k++) { const a = Math.abs(vals[k]); if (a > m && Number.isFinite(a)) m = a; }
      for (const ln of e.lines) {
        const [r, c] = ln._rc;
        const v = vals[r * w.cols + c];
        const a = m > 0 && Number.isFinite(v) ? Math.abs(v) / m : 0;
        ln.setAttribute("stroke", m === 0 ? NEUTRAL : v >= 0 ? POS : NEG);
        ln.setAttribute("stroke-width", (0.35 + 2.8 * a).toFixed(2));
        ln.setAttribute("stroke-opacity", (m === 0 ? 0.25 : 0.05 + 0.85 * a * dens).toFixed(2));
      }
    }
  }
  function markSelected() {
    const svg = $("network");
    for (const c of svg.querySelectorAll("circle.selected")) c.classList.remove("selected");
    if (!app.selected) return;
    const c = svg.querySelector(`circle[data-layer="${app.selected.layer}"][data-unit="${app.selected.unit}"]`);
    if (c) c.classList.add("selected");
  }

  // ---------------------------------------------------------------- unit panel
  function unitExists(sel) {
    const L = app.state && (app.state.layers || []).find((l) => l.layer === sel.layer && l.layer > 0);
    return !!L && sel.unit < L.width;
  }
  function selectUnit(layer, unit) {
    app.selected = { layer, unit };
    markSelected();
    fetchUnit(true);
  }
  async function fetchUnit(force) {
    if (!app.selected || !app.sessionId) return;
    if (app.unitBusy && !force) return;
    app.unitBusy = true;
    app.unitLast = performance.now();
    const { layer, unit } = app.selected;
    const r = await api("GET", `/api/sessions/${app.sessionId}/unit?layer=${layer}&unit=${unit}`);
    app.unitBusy = false;
    if (!app.selected || app.selected.layer !== layer || app.selected.unit !== unit) return;
    if (!r.ok) { showError(r.error); return; }
    drawUnit(r.data);
  }
  function drawUnit(d) {
    const panel = $("unit-panel");
    const st = app.state || {};
    const L = (st.layers || []).find((l) => l.layer === d.layer) || {};
    panel.textContent = "";
    const head = el("div", { class: "card-head" });
    head.appendChild(el("h2", {}, "Unit"));
    const t = el("span", { id: "unit-title", class: "muted" });
    t.innerHTML = `${esc(L.name || "linear " + d.layer)}, unit ${d.unit}` +
      (d.class != null ? ` · class <i class="sw" style="background:${unitColor(d.class)}"></i>${d.class}` : "") +
      ` · bias ${d.bias == null ? "none" : fmtN(d.bias)}`;
    head.appendChild(t);
    const close = el("button", { type: "button", class: "small", title: "close" }, "×");
    close.addEventListener("click", () => { app.selected = null; markSelected(); resetUnitPanel(); });
    head.appendChild(close);
    panel.appendChild(head);
    const body = el("div", { class: "unit-body" });
    const left = el("div", { class: "unit-fig" }), right = el("div", { class: "unit-fig" });
    left.appendChild(el("div", { class: "fig-title" }, `incoming weights (fan_in ${d.weights ? d.weights.length : 0})`));
    left.appendChild(weightBars(d.weights || [], 230, 122));
    body.appendChild(left);
    const a = d.activation || {};
    if (a.kind === "grid") {
      right.appendChild(el("div", { class: "fig-title" }, `${quantity(d)} over the plane, range [${fmtN(a.min)}, ${fmtN(a.max)}]`));
      right.appendChild(activationHeatmap(a, 122));
    } else if (a.kind === "histogram") {
      right.appendChild(el("div", { class: "fig-title" }, `${quantity(d)} over the training rows`));
      right.appendChild(histogram(a.edges || [], a.counts || [], 200, 122));
    }
    body.appendChild(right);
    panel.appendChild(body);
  }
  function quantity(d) {
    return d.quantity === "z" ? "pre-activation z" : d.quantity === "f(z)" ? "activation f(z)" : d.quantity ? String(d.quantity) : "activation";
  }
  function resetUnitPanel() {
    const panel = $("unit-panel");
    panel.textContent = "";
    const head = el("div", { class: "card-head" });
    head.appendChild(el("h2", {}, "Unit"));
    head.appendChild(el("span", { id: "unit-title", class: "muted" }));
    panel.appendChild(head);
    panel.appendChild(el("p", { class: "muted placeholder" }, "Click a unit in the network to see its incoming weights and its activation."));
  }
  function weightBars(ws, W, H) {
    const svg = sv("svg", { width: W, height: H, class: "bars", viewBox: `0 0 ${W} ${H}` });
    const padL = 40, padB = 16, padT = 6, padR = 4;
    let m = 0;
    for (const w of ws) if (Number.isFinite(w)) m = Math.max(m, Math.abs(w));
    if (m === 0) m = 1;
    const y = (v) => padT + ((m - v) / (2 * m)) * (H - padT - padB);
    svg.appendChild(sv("line", { x1: padL, x2: W - padR, y1: y(0), y2: y(0), class: "axis" }));
    svg.appendChild(sv("line", { x1: padL, x2: padL, y1: padT, y2: H - padB, class: "axis" }));
    for (const v of [m, 0, -m]) svg.appendChild(sv("text", { x: padL - 4, y: y(v) + 4, class: "tick end" }, fmtN(v, 2)));
    const n = ws.length, bw = (W - padL - padR) / Math.max(n, 1);
    ws.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const y0 = y(Math.max(v, 0)), y1 = y(Math.min(v, 0));
      svg.appendChild(sv("rect", { x: padL + i * bw + (bw > 4 ? 1 : 0), y: y0, width: Math.max(bw - (bw > 4 ? 2 : 0), 0.8), height: Math.max(y1 - y0, 0.5), fill: v >= 0 ? POS : NEG }));
    });
    svg.appendChild(sv("text", { x: (W + padL) / 2, y: H - 3, class: "tick" }, n > 1 ? `input unit 0 … ${n - 1}` : "input unit"));
    return svg;
  }
  function activationHeatmap(a, size) {
    const wrap = el("div", { class: "heat-wrap" });
    const cv = el("canvas", { width: size * devicePixelRatio, height: size * devicePixelRatio, class: "heat" });
    cv.style.width = cv.style.height = size + "px";
    const res = a.res, vals = a.values || [];
    const off = document.createElement("canvas");
    off.width = off.height = res;
    const octx = off.getContext("2d");
    const img = octx.createImageData(res, res);
    const s = Math.max(Math.abs(finite(a.min) || 0), Math.abs(finite(a.max) || 0)) || 1;
    for (let i = 0; i < res * res; i++) {
      const c = diverging((vals[i] || 0) / s);
      img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
    }
    octx.putImageData(img, 0, 0);
    const ctx = cv.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(off, 0, 0, cv.width, cv.height);
    // the training points, small, for orientation
    const st = app.state;
    if (st && st.bounds && st.points) {
      const [x0, x1, y0, y1] = st.bounds;
      ctx.fillStyle = "rgba(30,30,30,0.35)";
      for (const p of st.points.train || []) {
        const px = ((p[0] - x0) / (x1 - x0)) * cv.width, py = ((y1 - p[1]) / (y1 - y0)) * cv.height;
        ctx.fillRect(px - 1, py - 1, 2 * devicePixelRatio, 2 * devicePixelRatio);
      }
    }
    wrap.appendChild(cv);
    const scale = el("div", { class: "heat-scale" });
    scale.appendChild(el("span", {}, fmtN(-s, 2)));
    scale.appendChild(el("i", { class: "grad" }));
    scale.appendChild(el("span", {}, fmtN(s, 2)));
    wrap.appendChild(scale);
    return wrap;
  }
  function histogram(edges, counts, W, H) {
    const svg = sv("svg", { width: W, height: H, class: "bars", viewBox: `0 0 ${W} ${H}` });
    const padL = 34, padB = 18, padT = 6, padR = 6;
    if (!counts.length || edges.length < 2) return svg;
    const lo = edges[0], hi = edges[edges.length - 1];
    const m = Math.max(1, ...counts);
    const x = (v) => padL + ((v - lo) / ((hi - lo) || 1)) * (W - padL - padR);
    const y = (c) => H - padB - (c / m) * (H - padT - padB);
    counts.forEach((c, i) => svg.appendChild(sv("rect", { x: x(edges[i]), y: y(c), width: Math.max(x(edges[i + 1]) - x(edges[i]) - 0.5, 0.5), height: H - padB - y(c), fill: "#6b8fb8" })));
    svg.appendChild(sv("line", { x1: padL, x2: W - padR, y1: H - padB, y2: H - padB, class: "axis" }));
    svg.appendChild(sv("text", { x: padL, y: H - 4, class: "tick" }, fmtN(lo, 2)));
    svg.appendChild(sv("text", { x: W - padR, y: H - 4, class: "tick end" }, fmtN(hi, 2)));
    svg.appendChild(sv("text", { x: padL - 4, y: padT + 8, class: "tick end" }, String(m)));
    return svg;
  }

  // ---------------------------------------------------------------- decision boundary
  const B = { off: null, pad: { l: 34, b: 24, t: 6, r: 8 }, pointsKey: null };
  function boundaryGeom() {
    const cv = $("boundary");
    const w = cv.clientWidth || 330, h = cv.clientHeight || 330, dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
    const p = B.pad;
    return { cv, dpr, w, h, x: p.l, y: p.t, pw: w - p.l - p.r, ph: h - p.t - p.b };
  }
  function drawPointsLayer() { B.pointsKey = null; }
  function regressionRange() {
    const pts = (app.state && app.state.points) || {};
    let lo = Infinity, hi = -Infinity;
    for (const p of (pts.train || []).concat(pts.test || [])) { if (p[2] < lo) lo = p[2]; if (p[2] > hi) hi = p[2]; }
    return Number.isFinite(lo) ? [lo, hi] : [0, 1];
  }
  function drawBoundary() {
    const st = app.state;
    const note = $("boundary-note"), cv = $("boundary");
    if (!st || !st.bounds || !st.points) {
      cv.hidden = true; note.hidden = false;
      note.textContent = st ? `The decision boundary is drawn for 2-D data; this data set has ${st.inputs} inputs.` : "";
      return;
    }
    cv.hidden = false; note.hidden = true;
    const g = boundaryGeom(), ctx = cv.getContext("2d");
    ctx.setTransform(g.dpr, 0, 0, g.dpr, 0, 0);
    ctx.clearRect(0, 0, g.w, g.h);
    const regression = st.task === "regression";
    const grid = app.lastUpdate && app.lastUpdate.grid;
    ctx.fillStyle = "#f7f8fa";
    ctx.fillRect(g.x, g.y, g.pw, g.ph);
    if (grid && grid.res) {
      const res = grid.res;
      if (!B.off || B.off.width !== res) { B.off = document.createElement("canvas"); B.off.width = B.off.height = res; }
      const octx = B.off.getContext("2d");
      const img = octx.createImageData(res, res);
      const cls = b64bytes(grid.class), conf = b64bytes(grid.confidence);
      const cols = DATA_COLORS.map(hexRgb);
      for (let i = 0; i < res * res; i++) {
        let c;
        if (regression) c = diverging(((conf[i] || 0) / 255) * 2 - 1).map((v) => 255 + (v - 255) * 0.8);
        else {
          const k = cls[i] || 0, base = cols[k % cols.length], a = ((conf[i] || 0) / 255) * 0.6;
          c = [255 + (base[0] - 255) * a, 255 + (base[1] - 255) * a, 255 + (base[2] - 255) * a];
        }
        img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
      }
      octx.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(B.off, g.x, g.y, g.pw, g.ph);
    }
    // points
    const [x0, x1, y0, y1] = st.bounds;
    const px = (x) => g.x + ((x - x0) / (x1 - x0)) * g.pw, py = (y) => g.y + ((y1 - y) / (y1 - y0)) * g.ph;
    const rr = regressionRange();
    const colorOf = (lab) => (regression ? rgb(diverging(((lab - rr[0]) / ((rr[1] - rr[0]) || 1)) * 2 - 1)) : dataColor(lab));
    const npts = (st.points.train || []).length + (st.points.test || []).length;
    const r = npts > 1500 ? 2 : npts > 600 ? 2.6 : 3.2;
    ctx.lineWidth = 1.2;
    for (const p of st.points.test || []) {
      ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), r, 0, 2 * Math.PI);
      ctx.strokeStyle = colorOf(p[2]); ctx.stroke();
    }
    ctx.lineWidth = 0.9;
    ctx.strokeStyle = "rgba(20,24,31,0.85)";
    for (const p of st.points.train || []) {
      ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), r, 0, 2 * Math.PI);
      ctx.fillStyle = colorOf(p[2]); ctx.fill(); ctx.stroke();
    }
    // frame and ticks
    ctx.strokeStyle = "#9aa3ae"; ctx.lineWidth = 1;
    ctx.strokeRect(g.x + 0.5, g.y + 0.5, g.pw - 1, g.ph - 1);
    ctx.fillStyle = "#5b6673"; ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    for (const t of niceTicks(x0, x1, 5)) {
      const x = px(t); ctx.fillRect(x, g.y + g.ph, 1, 4); ctx.fillText(fmtN(t, 2), x, g.y + g.ph + 6);
    }
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const t of niceTicks(y0, y1, 5)) {
      const y = py(t); ctx.fillRect(g.x - 4, y, 4, 1); ctx.fillText(fmtN(t, 2), g.x - 6, y);
    }
  }

  // ---------------------------------------------------------------- charts (uPlot)
  const TRAIN_C = "#2b5fb4", TEST_C = "#d9661f";
  // Log axis: ticks and grid lines at powers of ten when there are two or more, else at 1-2-5.
  function logTicks(u, splits) {
    const mant = (v) => v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
    const keep = (ok) => splits.map((v) => (v > 0 && ok(mant(v)) ? v : null));
    const dec = keep((m) => Math.abs(m - 1) < 1e-6);
    if (dec.filter((v) => v != null).length >= 2) return dec;
    const f = keep((m) => [1, 2, 5].some((k) => Math.abs(m - k) < 1e-6));
    return f.filter((v) => v != null).length >= 2 ? f : splits;
  }
  function logLabel(v) {
    const e = Math.round(Math.log10(v));
    if (Math.abs(v / Math.pow(10, e) - 1) < 1e-6 && Math.abs(e) >= 4) return `1e${e}`;
    return Math.abs(Math.log10(v)) >= 4 ? v.toExponential(0).replace("e+", "e") : fmtN(v, 2);
  }
  function chartOpts(kind, width) {
    const axisFont = "12px system-ui, sans-serif";
    const isLoss = kind === "loss";
    const filt = isLoss ? logTicks : undefined;
    const yAxis = { label: isLoss ? "loss (log)" : "accuracy", font: axisFont, labelFont: axisFont, size: 50, labelSize: 18,
      grid: { stroke: "#eceef1" }, ticks: { stroke: "#d5d9df" },
      values: isLoss ? (u, vals) => vals.map((v) => (v == null ? "" : logLabel(v))) : (u, vals) => vals.map((v) => (v == null ? "" : v.toFixed(2))) };
    if (filt) { yAxis.filter = filt; yAxis.grid.filter = filt; yAxis.ticks.filter = filt; }
    const axes = [
      { label: "step", font: axisFont, labelFont: axisFont, size: 32, labelSize: 16, grid: { stroke: "#eceef1" }, ticks: { stroke: "#d5d9df" } },
      yAxis,
    ];
    const scales = isLoss ? { x: { time: false }, y: { distr: 3, log: 10 } } : { x: { time: false }, y: { range: [0, 1.02] } };
    return {
      width, height: isLoss ? 150 : 118,
      scales, axes,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      hooks: { setCursor: [(u) => chartHead(kind, u.cursor.idx)] },
      series: [
        {},
        { label: "train", stroke: TRAIN_C, width: 1.8, spanGaps: false, points: { size: 5 } },
        { label: "test", stroke: TEST_C, width: 1.8, dash: [5, 3], spanGaps: false, points: { size: 5 } },
      ],
    };
  }
  // The chart's head: a key with the newest values, or the values under the cursor.
  function chartHead(kind, idx) {
    const ev = app.evals;
    const hover = idx != null && ev[idx] != null;
    const e = hover ? ev[idx] : ev[ev.length - 1];
    const host = $(kind === "loss" ? "loss-last" : "acc-last");
    const a = kind === "loss" ? "train_loss" : "train_acc", b = kind === "loss" ? "test_loss" : "test_acc";
    const f = (v) => (v == null ? "–" : fmtN(v, 4));
    host.innerHTML = (e ? `<span class="at">${hover ? "step " + e.step : "latest"}</span>` : "") +
      `<span class="key"><i class="ln"></i>train ${e ? esc(f(e[a])) : ""}</span>` +
      `<span class="key"><i class="ln dash"></i>test ${e ? esc(f(e[b])) : ""}</span>`;
  }
  function resetCharts() {
    const mk = (id, kind) => {
      const host = $(id);
      if (app.charts[kind]) { app.charts[kind].destroy(); app.charts[kind] = null; }
      host.textContent = "";
      if (kind === "acc" && app.state && app.state.task === "regression") {
        host.appendChild(el("div", { class: "note" }, "Accuracy is for classification; this is a regression task."));
        $("acc-last").textContent = "";
        return;
      }
      if (typeof uPlot === "undefined") { host.appendChild(el("div", { class: "note" }, "uPlot did not load")); return; }
      app.charts[kind] = new uPlot(chartOpts(kind, host.clientWidth || 430), [[], [], []], host);
    };
    mk("loss-chart", "loss");
    mk("acc-chart", "acc");
  }
  function updateCharts() {
    const ev = app.evals;
    const xs = ev.map((e) => e.step);
    if (app.charts.loss) app.charts.loss.setData([xs, ev.map((e) => finitePos(e.train_loss)), ev.map((e) => finitePos(e.test_loss))]);
    if (app.charts.acc) app.charts.acc.setData([xs, ev.map((e) => finite(e.train_acc)), ev.map((e) => finite(e.test_acc))]);
    const lc = app.charts.loss, ac = app.charts.acc;
    chartHead("loss", lc && lc.cursor.idx != null && lc.cursor.left >= 0 ? lc.cursor.idx : null);
    if (ac) chartHead("acc", ac.cursor.idx != null && ac.cursor.left >= 0 ? ac.cursor.idx : null);
  }

  // ---------------------------------------------------------------- verdict
  const VERDICT_CLASS = { dead: "v-bad", deadlock: "v-bad", symmetric: "v-warn", partial: "v-warn", full: "v-good", unassessed: "v-none" };
  function drawVerdict() {
    const v = app.lastVerdict, st = app.state;
    const vd = $("verdict"), lr = $("learning");
    if (!v) {
      vd.textContent = "—"; vd.className = "verdict v-none";
      lr.textContent = ""; lr.className = "learning";
      $("summary").textContent = "The verdict appears once steps are taken (it is computed on pause, on a single step, at the end of the run and every couple of seconds while playing).";
      $("summary").classList.add("muted");
      $("verdict-step").textContent = "";
      $("verdict-layers").querySelector("tbody").textContent = "";
      setCommand(st ? st.command || "" : "");
      $("verdict-layers").hidden = true;
      return;
    }
    vd.textContent = v.verdict;
    vd.className = "verdict " + (VERDICT_CLASS[v.verdict] || "v-none");
    lr.textContent = v.learning ? v.learning : "";
    lr.className = "learning l-" + (v.learning || "none");
    $("summary").textContent = v.summary || "";
    $("summary").classList.remove("muted");
    verdictStep();
    const tb = $("verdict-layers").querySelector("tbody");
    tb.textContent = "";
    for (const l of v.layers || []) {
      const tr = el("tr");
      const L = st && (st.layers || []).find((x) => x.layer === l.layer);
      tr.appendChild(el("td", {}, L ? L.name : `linear ${l.layer}`));
      tr.appendChild(el("td", { class: "g-" + l.grad_state }, l.grad_state));
      tr.appendChild(el("td", {}, l.wake == null ? "asleep" : `step ${l.wake}`));
      const wtd = el("td", { class: "mono" }, `${l.width_start} → ${l.width_end}${L ? " of " + L.width : ""}`);
      if (L && l.width_end < L.width && !L.output) wtd.classList.add("narrow");
      tr.appendChild(wtd);
      tb.appendChild(tr);
    }
    $("verdict-layers").hidden = !(v.layers || []).length;
    setCommand(v.command || (st && st.command) || "");
  }
  function verdictStep() {
    const v = app.lastVerdict;
    if (!v) return;
    const now = app.lastUpdate ? app.lastUpdate.step : v.step;
    $("verdict-step").textContent = now !== v.step ? `at step ${v.step} (the run is at ${now})` : `at step ${v.step}`;
  }
  // The command line, each flag kept whole with its value when the line wraps.
  function setCommand(cmd) {
    const pre = $("command");
    if (pre.textContent === cmd) return;
    pre.textContent = "";
    const toks = String(cmd).split(" ");
    const groups = [];
    for (const t of toks) {
      if (groups.length && !t.startsWith("-") && groups[groups.length - 1].startsWith("-")) groups[groups.length - 1] += " " + t;
      else groups.push(t);
    }
    groups.forEach((g, i) => { pre.appendChild(el("span", { class: "tok" }, g)); if (i < groups.length - 1) pre.appendChild(document.createTextNode(" ")); });
  }

  // ---------------------------------------------------------------- explain (minimal markdown + TeX)
  const TEX_SYM = {
    delta: "δ", Delta: "Δ", theta: "θ", Theta: "Θ", sigma: "σ", Sigma: "Σ", alpha: "α", beta: "β",
    gamma: "γ", Gamma: "Γ", lambda: "λ", mu: "μ", nu: "ν", eta: "η", epsilon: "ε", varepsilon: "ε",
    phi: "φ", varphi: "φ", psi: "ψ", rho: "ρ", tau: "τ", omega: "ω", Omega: "Ω", pi: "π", xi: "ξ", kappa: "κ", chi: "χ", zeta: "ζ",
    partial: "∂", sum: "∑", prod: "∏", odot: "⊙", otimes: "⊗", oplus: "⊕", cdot: "·", cdots: "⋯", ldots: "…", dots: "…",
    times: "×", top: "⊤", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠", approx: "≈", sim: "∼", propto: "∝",
    to: "→", rightarrow: "→", leftarrow: "←", mapsto: "↦", infty: "∞", in: "∈", nabla: "∇", pm: "±", mp: "∓",
    qquad: "\u2003\u2003", quad: "\u2003", ",": "\u2009", ";": "\u2005", ":": "\u2005", " ": " ", "!": "",
    "{": "{", "}": "}", "|": "‖", lVert: "‖", rVert: "‖", Vert: "‖", lvert: "|", rvert: "|", langle: "⟨", rangle: "⟩",
    log: "log", exp: "exp", max: "max", min: "min", sqrt: null, frac: null, ell: "ℓ",
  };
  const TEX_IGNORE = new Set(["textstyle", "displaystyle", "scriptstyle", "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "limits", "nolimits"]);
  const TEX_CAL = { L: "ℒ", N: "𝒩", O: "𝒪", F: "ℱ", H: "ℋ", D: "𝒟" };
  function tex(src) {
    let i = 0, out = "";
    const raw = () => {
      while (src[i] === " ") i++;
      if (src[i] === "{") {
        let d = 1, j = i + 1;
        while (j < src.length && d) { if (src[j] === "{") d++; else if (src[j] === "}") d--; j++; }
        const inner = src.slice(i + 1, j - 1); i = j; return inner;
      }
      if (src[i] === "\\") { let j = i + 1; if (/[a-zA-Z]/.test(src[j] || "")) while (j < src.length && /[a-zA-Z]/.test(src[j])) j++; else j++; const r = src.slice(i, j); i = j; return r; }
      return src[i++] || "";
    };
    const group = () => tex(raw());
    while (i < src.length) {
      const ch = src[i];
      if (ch === "\\") {
        let j = i + 1;
        if (/[a-zA-Z]/.test(src[j] || "")) while (j < src.length && /[a-zA-Z]/.test(src[j])) j++; else j++;
        const name = src.slice(i + 1, j); i = j;
        if (name === "frac" || name === "dfrac" || name === "tfrac") { const a = group(), b = group(); out += `<span class="frac"><span>${a}</span><span>${b}</span></span>`; }
        else if (name === "sqrt") out += `√<span class="ov">${group()}</span>`;
        else if (["text", "mathrm", "textrm", "operatorname", "textnormal"].includes(name)) out += `<span class="up">${esc(raw())}</span>`;
        else if (name === "mathbf" || name === "boldsymbol" || name === "bm") out += `<b>${group()}</b>`;
        else if (name === "mathcal" || name === "mathscr") { const g = raw(); out += TEX_CAL[g] || esc(g); }
        else if (name === "hat" || name === "bar" || name === "tilde" || name === "vec") out += group() + ({ hat: "\u0302", bar: "\u0304", tilde: "\u0303", vec: "\u20d7" }[name]);
        else if (TEX_IGNORE.has(name)) { /* sizing */ }
        else if (TEX_SYM[name] != null) out += esc(TEX_SYM[name]);
        else out += esc(name);
      } else if (ch === "_" || ch === "^") {
        i++;
        const g = group();
        out += ch === "_" ? `<sub>${g}</sub>` : `<sup>${g}</sup>`;
      } else if (ch === "{") out += group();
      else if (ch === "}") i++;
      else if (/[A-Za-z]/.test(ch)) {
        let j = i; while (j < src.length && /[A-Za-z]/.test(src[j])) j++;
        const w = src.slice(i, j); i = j;
        out += w.length === 1 ? `<i>${w}</i>` : esc(w);
      } else { out += esc(ch); i++; }
    }
    return out;
  }
  function inline(s) {
    return s.split(/(`[^`]*`|\$\$[^$]+\$\$|\$[^$\n]+\$)/).map((part) => {
      if (/^`[^`]*`$/.test(part)) return `<code>${esc(part.slice(1, -1))}</code>`;
      if (/^\$\$[^$]+\$\$$/.test(part)) return `<span class="math">${tex(part.slice(2, -2))}</span>`;
      if (/^\$[^$\n]+\$$/.test(part)) return `<span class="math">${tex(part.slice(1, -1))}</span>`;
      let h = esc(part);
      h = h.replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>").replace(/(^|[^*\w])\*([^*\s][^*]*)\*(?!\w)/g, "$1<i>$2</i>");
      h = h.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (m, t, u) => (/^https?:/.test(u) ? `<a href="${u}" target="_blank" rel="noopener">${t}</a>` : t));
      return h;
    }).join("");
  }
  function renderMarkdown(md) {
    const lines = String(md || "").replace(/\r\n?/g, "\n").split("\n");
    const out = [];
    const isTableSep = (l) => /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(l);
    const cells = (l) => l.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
    const blockStart = (l, next) => /^```/.test(l) || /^\s*\$\$/.test(l) || /^#{1,6}\s/.test(l) || /^\s*[-*+]\s+/.test(l) || /^\s*\d+[.)]\s+/.test(l) || (/\|/.test(l) && next != null && isTableSep(next)) || /^\s*>/.test(l);
    let i = 0;
    while (i < lines.length) {
      const l = lines[i];
      if (/^```/.test(l)) {
        const body = [];
        i++;
        while (i < lines.length && !/^```/.test(lines[i])) body.push(lines[i++]);
        i++;
        out.push(`<pre><code>${esc(body.join("\n"))}</code></pre>`);
      } else if (/^\s*\$\$/.test(l)) {
        // display math: $$...$$ on one line, or from a line opening $$ to one closing it
        let body = l.trim().slice(2);
        i++;
        if (!/\$\$\s*$/.test(body)) { while (i < lines.length && !/\$\$\s*$/.test(lines[i])) body += " " + lines[i++].trim(); if (i < lines.length) body += " " + lines[i++].trim(); }
        out.push(`<div class="math display">${tex(body.replace(/\$\$\s*$/, ""))}</div>`);
      } else if (/^#{1,6}\s/.test(l)) {
        const n = l.match(/^#+/)[0].length;
        out.push(`<h${n + 1 > 6 ? 6 : n + 1}>${inline(l.replace(/^#+\s*/, "").replace(/\s*#+\s*$/, ""))}</h${n + 1 > 6 ? 6 : n + 1}>`);
        i++;
      } else if (/\|/.test(l) && i + 1 < lines.length && isTableSep(lines[i + 1])) {
        const head = cells(l);
        i += 2;
        const rows = [];
        while (i < lines.length && /\|/.test(lines[i]) && lines[i].trim()) rows.push(cells(lines[i++]));
        out.push("<table><thead><tr>" + head.map((c) => `<th>${inline(c)}</th>`).join("") + "</tr></thead><tbody>" +
          rows.map((r) => "<tr>" + r.map((c) => `<td>${inline(c)}</td>`).join("") + "</tr>").join("") + "</tbody></table>");
      } else if (/^\s*([-*+]|\d+[.)])\s+/.test(l)) {
        const ordered = /^\s*\d/.test(l);
        const items = [];
        while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
          let item = lines[i++].replace(/^\s*([-*+]|\d+[.)])\s+/, "");
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) item += " " + lines[i++].trim();
          items.push(`<li>${inline(item)}</li>`);
        }
        out.push(ordered ? `<ol>${items.join("")}</ol>` : `<ul>${items.join("")}</ul>`);
      } else if (/^\s*>/.test(l)) {
        const body = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
        out.push(`<blockquote>${inline(body.join(" "))}</blockquote>`);
      } else if (!l.trim()) {
        i++;
      } else {
        const body = [];
        while (i < lines.length && lines[i].trim() && !blockStart(lines[i], lines[i + 1])) body.push(lines[i++]);
        if (!body.length) body.push(lines[i++]);
        out.push(`<p>${inline(body.join(" "))}</p>`);
      }
    }
    return out.join("\n");
  }
  async function showExplain() {
    if (!app.sessionId) return;
    const panel = $("explain-panel");
    $("explain-overlay").hidden = false;
    panel.innerHTML = '<p class="muted">computing… (explain replays the configured steps; a long run takes a while)</p>';
    const r = await api("GET", `/api/sessions/${app.sessionId}/explain`);
    if (!r.ok) { panel.innerHTML = ""; $("explain-overlay").hidden = true; showError(r.error); return; }
    if (!app.connError) clearError();
    panel.innerHTML = (r.data.markdown ? renderMarkdown(r.data.markdown) : `<pre>${esc(r.data.text || "")}</pre>`) +
      (r.data.command ? `<p class="muted">the same on the command line:</p><pre><code>${esc(r.data.command)}</code></pre>` : "");
    panel.scrollTop = 0;
  }

  // ---------------------------------------------------------------- share
  async function share() {
    const url = location.origin + "/#" + toFragment(currentSettings());
    const a = $("share-link");
    a.href = url; a.textContent = url; a.hidden = false;
    let copied = false;
    try { if (navigator.clipboard) { await navigator.clipboard.writeText(url); copied = true; } } catch (e) { /* ignore */ }
    const b = $("share");
    b.textContent = copied ? "Copied ✓" : "Link below";
    setTimeout(() => { b.textContent = "Share link"; }, 1600);
  }

  // ---------------------------------------------------------------- boot
  function wireRunControls() {
    $("play").addEventListener("click", () => control("play"));
    $("pause").addEventListener("click", () => control("pause"));
    $("step").addEventListener("click", () => {
      const n = Math.max(1, parseInt($("step-n").value, 10) || 1);
      control("step", { steps: n });
    });
    $("rewind").addEventListener("click", () => control("rewind"));
    $("share").addEventListener("click", share);
    $("explain").addEventListener("click", showExplain);
    $("explain-close").addEventListener("click", () => { $("explain-overlay").hidden = true; });
    $("explain-overlay").addEventListener("click", (e) => { if (e.target === $("explain-overlay")) $("explain-overlay").hidden = true; });
    $("copy-command").addEventListener("click", async () => {
      try { await navigator.clipboard.writeText($("command").textContent); $("copy-command").textContent = "copied ✓"; } catch (e) {
        const r = document.createRange(); r.selectNodeContents($("command")); const s = getSelection(); s.removeAllRanges(); s.addRange(r);
        $("copy-command").textContent = "selected";
      }
      setTimeout(() => { $("copy-command").textContent = "copy"; }, 1500);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") $("explain-overlay").hidden = true;
      const tag = (e.target && e.target.tagName) || "";
      if (e.key === " " && !/INPUT|TEXTAREA|SELECT|BUTTON/.test(tag) && app.state) {
        e.preventDefault();
        control(app.state.status === "running" ? "pause" : "play");
      }
    });
    window.addEventListener("resize", () => { app.topoKey = null; app.dirty.state = true; schedule(); });
    window.addEventListener("pagehide", () => {
      if (app.sessionId) try { fetch(`/api/sessions/${app.sessionId}`, { method: "DELETE", keepalive: true, credentials: "same-origin" }); } catch (e) { /* ignore */ }
    });
  }

  async function boot() {
    wireRunControls();
    drawVerdict();
    const r = await api("GET", "/api/options");
    if (!r.ok) { showError(`cannot read /api/options: ${r.error}`); return; }
    app.options = r.data;
    buildControls(app.options);
    const fromLink = parseFragment(location.hash);
    fillForm(fromLink || {});
    app.formBaseline = JSON.stringify(formSettings());
    const c = await createSession(formSettings());
    if (!c.ok) {
      if (fromLink) {
        const msg = `the link's settings were refused: ${c.error}`;
        const d = await createSession({});
        showError(msg);
        if (!d.ok) showError(`${msg}; the defaults too: ${d.error}`);
      } else showError(c.error);
      return;
    }
    clearError();
  }
  boot();
})();
