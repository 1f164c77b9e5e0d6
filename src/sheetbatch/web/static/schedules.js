// sheetbatch Schedules page: vanilla JS, no build step.
//
// The list comes from GET /api/schedules with the log cursor it is valid at; the page then
// follows /events/progress from that cursor and refreshes a schedule when one of its events
// arrives (its changes and its ticks). A watchdog polls and reopens the stream when neither
// an event nor a ping arrived for `watchdog` seconds.
"use strict";

(function () {
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const params = new URLSearchParams(window.location.search);
  const CSRF = meta("csrf-token");
  const WATCHDOG_MS = 1000 * Number(params.get("watchdog") || meta("watchdog-seconds") || 30);
  const TYPES = ["schedule_created", "schedule_updated", "schedule_paused", "schedule_resumed",
    "schedule_deleted", "tick_started", "tick_launched", "tick_finished"];
  const schedules = new Map();
  const ticks = new Map();
  const previews = new Map();
  let leader = null;
  let cursor = null;

  // Shown text carries no bidi controls: a sheet's cell or name could reorder what is shown.
  const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
  const shown = (text) => String(text === null || text === undefined ? "" : text).replace(BIDI, "");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = shown(value);
      else node.setAttribute(key, value === true ? "" : shown(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(shown(child)));
    }
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", credentials: "same-origin" }, options || {});
    opts.headers = { Accept: "application/json" };
    if (opts.method !== "GET") {
      opts.headers["X-CSRF-Token"] = CSRF;
      if (opts.body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(opts.body);
      }
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(5000, WATCHDOG_MS));
    opts.signal = abort.signal;
    let response;
    try { response = await fetch(path, opts); } finally { clearTimeout(timer); }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const err = new Error((body && body.error) || `${response.status} ${response.statusText}`);
      err.field = body && body.field;
      throw err;
    }
    return body;
  }

  function setConn(state) {
    const node = document.getElementById("conn");
    node.dataset.state = state;
    node.querySelector(".label").textContent = state;
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "–";
  }

  // ------------------------------------------------------------------ rendering
  function tickText(t) {
    let text = t.state + (t.reason ? ` · ${t.reason}` : "");
    if (t.batch_id) text += ` · batch ${t.batch_id} (${t.rows} rows)`;
    return text;
  }

  function renderLeader() {
    const node = document.getElementById("leader");
    if (!leader) return;
    node.dataset.leading = String(leader.leading);
    if (leader.leading) {
      const l = leader.leader;
      node.textContent = `scheduler ${l.owner} leads (epoch ${l.epoch}), heartbeat ${l.seconds_since_renewal.toFixed(1)} s ago`;
    } else {
      node.textContent = "no scheduler is running: due ticks wait (sheetbatch scheduler)";
    }
  }

  function card(s) {
    const last = s.last_tick;
    const recent = ticks.get(s.schedule_id) || (last ? [last] : []);
    const timeline = el("div", { class: "timeline", "aria-label": "recent ticks" },
      ...recent.slice().reverse().map((t) => el("span", {
        class: `tk st-${t.state}`, "data-state": t.state,
        title: `${when(t.scheduled_for)}: ${tickText(t)}${t.detail ? " — " + t.detail : ""}`,
      })));
    const lastLine = last
      ? el("div", { class: "last", "data-state": last.state, "data-reason": last.reason || "" },
          "last tick ", el("span", { class: `badge st-${last.state}`, text: last.state }),
          last.reason ? el("span", { class: "reason", text: ` ${last.reason}` }) : null,
          el("span", { class: "detail", text: ` ${when(last.scheduled_for)}${last.detail ? " — " + last.detail : ""}` }))
      : el("div", { class: "last muted", text: "no tick yet" });
    const status = s.paused ? "paused" : "active";
    const actions = el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", "data-action": s.paused ? "resume" : "pause",
        text: s.paused ? "Resume" : "Pause" }),
      el("button", { type: "button", "data-action": "run", text: "Run now" }),
      el("button", { type: "button", class: "secondary", "data-action": "preview", text: "Preview" }));
    const nodes = [
      el("h3", {}, el("span", { class: "name", text: s.name }),
        el("span", { class: `badge st-${status}`, text: status })),
      actions,
      el("div", { class: "when", text: s.description }),
      el("div", { class: "meta", text: `${s.sheet} · ${s.pipeline} · overlap ${s.overlap} · catch-up ${s.catchup}`
        + (s.paused && s.paused_reason ? ` · ${s.paused_reason}` : "") }),
      el("div", { class: "meta next", text: "next: " + (s.next_fire_times.slice(0, 3).join(", ") || "never") }),
      lastLine,
      timeline,
    ];
    const preview = previews.get(s.schedule_id);
    if (preview && preview.error) {
      nodes.push(el("div", { class: "preview error", role: "alert", text: `preview: ${preview.error}` }));
    } else if (preview) {
      nodes.push(el("div", { class: "preview" },
        `${preview.selected} of ${preview.total_rows} rows would be processed`,
        el("ol", {}, ...preview.rows.slice(0, 50).map((r) =>
          el("li", { text: `row ${r.row}: ${r.label || "(no name)"} ${r.status ? "(" + r.status + ")" : "(new)"}` })))));
    }
    const article = el("article", { class: "schedule", "data-schedule-id": s.schedule_id,
      "data-paused": String(s.paused) }, ...nodes);
    actions.addEventListener("click", (e) => act(s, e.target.dataset.action));
    return article;
  }

  function render() {
    const list = [...schedules.values()].sort((a, z) => (a.created < z.created ? -1 : 1));
    document.getElementById("no-schedules").hidden = list.length > 0;
    document.getElementById("schedules").replaceChildren(...list.map(card));
    renderLeader();
    document.body.dataset.ready = "1";
  }

  // ------------------------------------------------------------------ actions
  async function act(s, action) {
    const id = encodeURIComponent(s.schedule_id);
    try {
      if (action === "pause" || action === "resume") {
        schedules.set(s.schedule_id, await api(`/api/schedules/${id}`, { method: "PATCH", body: { paused: action === "pause" } }));
      } else if (action === "run") {
        await api(`/api/schedules/${id}/trigger`, { method: "POST" });
      } else if (action === "preview") {
        previews.set(s.schedule_id, await api(`/api/schedules/${id}/preview`));
      } else return;
      await refresh(s.schedule_id);
    } catch (err) {
      previews.set(s.schedule_id, { selected: 0, total_rows: 0, rows: [], error: err.message });
      console.warn("sheetbatch:", action, err);
      render();
    }
  }

  async function refresh(id) {
    try {
      const [s, t] = await Promise.all([
        api(`/api/schedules/${encodeURIComponent(id)}`),
        api(`/api/schedules/${encodeURIComponent(id)}/ticks?limit=40`),
      ]);
      schedules.set(id, s);
      ticks.set(id, t.ticks);
    } catch (err) {
      if (err.field === "schedule_id") { schedules.delete(id); ticks.delete(id); } else throw err;
    }
    render();
  }

  const pending = new Map();
  function refreshSoon(id) {
    if (pending.has(id)) return;
    pending.set(id, setTimeout(() => { pending.delete(id); refresh(id).catch((e) => console.warn(e)); }, 150));
  }

  async function poll() {
    const body = await api("/api/schedules");
    schedules.clear();
    for (const s of body.schedules) schedules.set(s.schedule_id, s);
    leader = body.scheduler;
    await Promise.all(body.schedules.map((s) => api(`/api/schedules/${encodeURIComponent(s.schedule_id)}/ticks?limit=40`)
      .then((t) => ticks.set(s.schedule_id, t.ticks))));
    render();
    return body.cursor;
  }

  // ------------------------------------------------------------------ the live stream
  let es = null;
  let lastSeen = Date.now();
  function open() {
    if (es) es.close();
    const url = new URL("/events/progress", window.location.href);
    if (cursor !== null) url.searchParams.set("last_event_id", String(cursor));
    es = new EventSource(url.toString());
    const mine = es;
    lastSeen = Date.now();
    setConn("connecting");
    es.onopen = () => { if (mine === es) { lastSeen = Date.now(); setConn("live"); } };
    es.onerror = () => {
      if (mine !== es) return;
      setConn(es.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
      if (es.readyState === EventSource.CLOSED) recover();
    };
    es.addEventListener("ping", () => { lastSeen = Date.now(); setConn("live"); });
    es.addEventListener("snapshot", (e) => { lastSeen = Date.now(); cursor = JSON.parse(e.data).cursor; });
    for (const type of TYPES) {
      es.addEventListener(type, (e) => {
        if (mine !== es) return;
        lastSeen = Date.now();
        const id = Number(e.lastEventId);
        if (cursor !== null && id <= cursor) return;
        cursor = id;
        const ev = JSON.parse(e.data);
        if (type === "tick_finished") previews.delete(ev.data.schedule_id); // it is stale now
        refreshSoon(ev.data.schedule_id);
      });
    }
  }

  let recovering = false;
  async function recover() {
    if (recovering) return;
    recovering = true;
    const conn = document.getElementById("conn");
    conn.dataset.recoveries = String(Number(conn.dataset.recoveries || 0) + 1);
    setConn("polling");
    try { cursor = await poll(); } catch (err) { console.warn("sheetbatch: poll failed", err); }
    recovering = false;
    open();
  }

  setInterval(() => {
    if (!recovering && Date.now() - lastSeen > WATCHDOG_MS) recover();
  }, 1000);
  // The leader's heartbeat age and next fire times move with time, not with events.
  setInterval(() => { api("/api/schedules").then((b) => { leader = b.scheduler; renderLeader(); }).catch(() => {}); }, 5000);

  // ------------------------------------------------------------------ the form
  // The sheets this server may use (files in its allowed directories, recent Google Sheets)
  // are offered as suggestions; a Google Sheets URL may still be typed in.
  async function loadSheets() {
    let body;
    try { body = await api("/api/sheets"); } catch (err) { console.warn("sheetbatch: sheets", err); return; }
    const options = [
      ...body.files.map((f) => el("option", { value: f.path, label: f.name })),
      ...body.google.map((g) => el("option", { value: g.spec, label: g.name })),
    ];
    document.getElementById("s-sheets").replaceChildren(...options);
    document.getElementById("s-sheet-note").textContent = body.directories.length
      ? "" : "This server allows no local sheet directory (serve --sheet-dir DIR): Google Sheets only.";
  }

  function setupForm() {
    loadSheets();
    const form = document.getElementById("schedule-form");
    const zone = document.getElementById("s-timezone");
    try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (_) { /* keep */ }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const box = document.getElementById("schedule-error");
      box.hidden = true;
      const value = (id) => document.getElementById(id).value.trim();
      const body = { sheet: value("s-sheet"), overlap: value("s-overlap"), catchup: value("s-catchup") };
      const kind = form.querySelector('input[name="kind"]:checked').value;
      if (kind === "every") body.every = value("s-every");
      else { body.cron = value("s-cron"); if (value("s-timezone")) body.timezone = value("s-timezone"); }
      if (value("s-name")) body.name = value("s-name");
      if (value("s-pipeline")) body.pipeline = value("s-pipeline");
      if (document.getElementById("s-retry").checked) body.retry_failed = true;
      const notify = value("s-notify").split(/[\s,]+/).filter((u) => u);
      if (notify.length) body.notify = notify;
      try {
        const created = await api("/api/schedules", { method: "POST", body });
        schedules.set(created.schedule_id, created);
        form.reset();
        try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (_) { /* keep */ }
        render();
      } catch (err) {
        box.textContent = shown(err.field ? `${err.field}: ${err.message}` : err.message);
        box.hidden = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    setupForm();
    try { cursor = await poll(); } catch (err) { console.warn("sheetbatch: first load failed", err); }
    open();
  });
})();
