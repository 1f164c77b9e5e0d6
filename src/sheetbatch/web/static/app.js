// sheetbatch dashboard: vanilla JS, no build step.
//
// State comes from the server only: a stream without a cursor opens with a `snapshot`
// (the state and the log cursor it is valid at); every later event carries its cursor as
// its id. Each row remembers the id of the last event applied to it (`last_event_id`), so
// an event is applied at most once and a REST snapshot never rolls a row back.
// A watchdog reopens the stream from the newest cursor (after a REST poll) when neither an
// event nor a ping arrived for `watchdog` seconds; a closed stream is retried with backoff.
"use strict";

(function () {
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.getAttribute("content") : "";
  };
  const params = new URLSearchParams(window.location.search);
  const CSRF = meta("csrf-token");
  const WATCHDOG_MS = 1000 * Number(params.get("watchdog") || meta("watchdog-seconds") || 30);
  const FETCH_TIMEOUT_MS = Math.max(5000, WATCHDOG_MS);
  const LOG_TYPES = [
    "batch_created", "batch_finished", "batch_cancel_requested", "batch_reopened",
    "jobs_added", "job_queued", "job_started", "phase_started", "phase_progress",
    "phase_finished", "job_succeeded", "job_failed", "job_cancelled", "job_requeued",
    "job_note",
  ];
  // Events that the store applies to the job's row (a note does not change it).
  const JOB_ROW_TYPES = new Set(LOG_TYPES.filter((t) => t.startsWith("job_") || t.startsWith("phase_"))
    .filter((t) => t !== "job_note"));

  // ------------------------------------------------------------------ helpers
  // Bidi embedding/override/isolate controls would let a cell show `exe.png` for
  // `\u202egnp.exe`: shown text never carries them (the store keeps what the sheet says).
  const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
  const shown = (text) => String(text === null || text === undefined ? "" : text).replace(BIDI, "");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ method: "GET", credentials: "same-origin" }, options || {});
    const headers = { Accept: "application/json" };
    if (opts.method !== "GET") {
      headers["X-CSRF-Token"] = CSRF;
      if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    }
    opts.headers = headers;
    if (opts.body !== undefined && typeof opts.body !== "string") opts.body = JSON.stringify(opts.body);
    // A stalled network must not hang a poll forever: give up after FETCH_TIMEOUT_MS.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    opts.signal = abort.signal;
    let response;
    try {
      response = await fetch(path, opts);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const err = new Error((body && body.error) || `${response.status} ${response.statusText}`);
      err.status = response.status;
      err.field = body && body.field;
      throw err;
    }
    return body;
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 90) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${Math.round(s - 60 * m)} s`;
  }

  function countsText(c) {
    const parts = [`${c.succeeded} succeeded`, `${c.failed} failed`];
    if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
    if (c.running) parts.push(`${c.running} running`);
    if (c.queued) parts.push(`${c.queued} queued`);
    return parts.join(" · ");
  }

  function setConn(state, detail) {
    const node = document.getElementById("conn");
    if (!node) return;
    node.dataset.state = state;
    const labels = {
      connecting: "connecting", live: "live", reconnecting: "reconnecting",
      polling: "polling", offline: "offline", done: "finished",
    };
    node.querySelector(".label").textContent = labels[state] || state;
    node.title = detail || labels[state] || state;
  }

  function setBar(node, percent, text) {
    const p = Math.max(0, Math.min(100, percent));
    node.dataset.percent = String(Math.round(p * 100) / 100);
    node.querySelector(".fill").style.width = `${p}%`;
    node.querySelector(".text").textContent = text === undefined ? `${Math.floor(p)}%` : text;
  }

  // ------------------------------------------------------------------ the live stream
  class LiveStream {
    constructor(url, handlers) {
      this.url = url;
      this.h = handlers;
      this.cursor = null;
      this.es = null;
      this.lastSeen = Date.now();
      this.timer = null;
      this.ended = false;
      this.recovering = false;
      this.backoff = 1000;
    }

    start(cursor) {
      this.cursor = cursor === undefined ? null : cursor;
      this.ended = false;
      this.open();
      if (!this.timer) this.timer = setInterval(() => this.watchdog(), 1000);
    }

    open() {
      if (this.es) this.es.close();
      const url = new URL(this.url, window.location.href);
      if (this.cursor !== null) url.searchParams.set("last_event_id", String(this.cursor));
      const es = new EventSource(url.toString());
      this.es = es;
      this.lastSeen = Date.now();
      setConn("connecting");
      es.onopen = () => {
        if (es !== this.es) return;
        this.lastSeen = Date.now();
        this.backoff = 1000;
        setConn("live");
      };
      es.onerror = () => {
        if (es !== this.es || this.ended) return;
        if (es.readyState === EventSource.CLOSED) {
          // A non-200 answer: EventSource gives up for good; we do not.
          setConn("offline", "the stream was refused; polling and retrying");
          this.recover(true);
        } else {
          setConn("reconnecting");
        }
      };
      const onMessage = (e) => this.receive(es, e);
      for (const type of [...LOG_TYPES, "snapshot", "end", "ping"]) es.addEventListener(type, onMessage);
    }

    receive(es, e) {
      if (es !== this.es) return;
      this.lastSeen = Date.now();
      if (e.type === "ping") { setConn("live"); return; }
      const data = JSON.parse(e.data);
      const id = Number(e.lastEventId);
      if (e.type === "snapshot") {
        this.cursor = data.cursor;
        this.h.snapshot(data);
        setConn("live");
        return;
      }
      if (e.type === "end") {
        this.cursor = Math.max(this.cursor || 0, id);
        this.finish();
        if (this.h.end) this.h.end(data);
        return;
      }
      if (this.cursor !== null && id <= this.cursor) return; // already applied
      this.cursor = id;
      this.h.event(data);
    }

    watchdog() {
      if (this.ended || this.recovering) return;
      if (Date.now() - this.lastSeen > WATCHDOG_MS) {
        console.warn(`sheetbatch: no event or ping for ${WATCHDOG_MS / 1000}s; polling and reconnecting`);
        this.recover(false);
      }
    }

    async recover(refused) {
      if (this.recovering) return;
      this.recovering = true;
      const conn = document.getElementById("conn");
      if (conn) conn.dataset.recoveries = String(Number(conn.dataset.recoveries || 0) + 1);
      if (this.es) { this.es.close(); this.es = null; }
      setConn("polling", "polling the REST API");
      try {
        await this.h.poll();
      } catch (err) {
        console.warn("sheetbatch: polling failed", err);
      }
      if (refused) {
        await new Promise((resolve) => setTimeout(resolve, this.backoff));
        this.backoff = Math.min(15000, this.backoff * 2);
      }
      this.recovering = false;
      if (!this.ended) this.open();
    }

    finish() {
      this.ended = true;
      if (this.es) { this.es.close(); this.es = null; }
      setConn("done");
    }
  }

  // ------------------------------------------------------------------ batch page
  function batchPage(batchId) {
    // The rows table shows one page of PAGE rows at a time, paged on the server
    // (`/api/progress/all?batch_id=&cursor=`): a 500,000-row batch costs the page what a
    // 200-row one does. The stream's snapshot is the first page (it carries the first 200
    // rows and `jobs_next_cursor`); other pages are read over REST. Events apply to the rows
    // on the page; while a page loads they wait in `pending` and are applied on top of the
    // page's REST snapshot (only events newer than a row's last_event_id), so nothing is
    // applied twice and nothing is lost. With more than one page, the counts come from the
    // batch's REST snapshot, refreshed at most once a second while events arrive.
    const PAGE = 200;
    const state = { batch: null, jobs: new Map(), finished: false, complete: true };
    let pending = [];
    const tbody = document.querySelector("#jobs tbody");
    const rows = new Map();
    const dirty = new Set();
    let fullRender = true;
    let renderQueued = false;
    let generation = 0;
    let pageIndex = 0;
    const cursors = [null]; // cursors[k]: the cursor page k is read from (page 0: none)
    let asked = 0; // the page last asked for (shown once its rows arrive)
    let refreshTimer = null;
    let batchAsked = 0;
    let batchShown = 0;

    function onePage() { return pageIndex === 0 && !cursors[1]; }

    function jobFromEvent(job, ev) {
      const d = ev.data || {};
      const next = Object.assign({}, job);
      next.status = d.status || next.status;
      next.last_event_id = ev.id;
      if (typeof d.row === "number") next.row = d.row;
      switch (ev.type) {
        case "job_queued":
        case "job_requeued":
          if (d.label !== undefined) next.label = d.label;
          next.phase = null; next.fraction = 0; next.error = null; next.phase_seconds = {};
          break;
        case "job_started":
          next.phase = null; next.error = null;
          break;
        case "phase_started":
        case "phase_progress":
          next.phase = { index: d.index, count: d.count, name: d.name };
          next.fraction = d.fraction || 0;
          break;
        case "phase_finished":
          next.phase = { index: d.index, count: d.count, name: d.name };
          next.fraction = 1;
          next.phase_seconds = Object.assign({}, next.phase_seconds || {}, { [d.name]: d.seconds });
          break;
        case "job_failed":
          next.error = d.error || d.reason || "failed";
          break;
        case "job_cancelled":
          next.error = null;
          break;
        default:
          break;
      }
      return next;
    }

    function applyJobEvent(ev) {
      let job = state.jobs.get(ev.job_id);
      if (!job) {
        // A row not on this page; a new row (jobs added) belongs here only on a last page.
        if (cursors[pageIndex + 1] || typeof (ev.data || {}).row !== "number") return;
        job = { job_id: ev.job_id, batch_id: batchId, label: "", phase: null, fraction: 0,
          error: null, phase_seconds: {}, last_event_id: 0 };
        fullRender = true;
      }
      if (ev.id <= (job.last_event_id || 0)) return;
      state.jobs.set(ev.job_id, jobFromEvent(job, ev));
      dirty.add(ev.job_id);
    }

    // The batch's REST snapshot; of answers that cross, the one asked for last wins (an
    // event after it asks again, so the shown batch converges on the store's).
    async function fetchBatch() {
      const mine = ++batchAsked;
      const batch = await api(`/api/batches/${encodeURIComponent(batchId)}`);
      if (mine < batchShown) return;
      batchShown = mine;
      const seen = state.batch ? state.batch.last_event_id || 0 : 0;
      state.batch = Object.assign(batch, { last_event_id: Math.max(batch.last_event_id || 0, seen) });
      scheduleRender();
    }

    function refreshBatch(now) {
      if (onePage() && !now) return; // the counts come from the rows on the page
      if (refreshTimer) { if (!now) return; clearTimeout(refreshTimer); }
      refreshTimer = setTimeout(() => {
        refreshTimer = null;
        fetchBatch().catch((err) => console.warn("sheetbatch: refreshing the batch failed", err));
      }, now ? 0 : 1000);
    }

    function applyEvent(ev) {
      if (ev.batch_id !== batchId) return;
      if (state.batch) state.batch.last_event_id = Math.max(state.batch.last_event_id || 0, ev.id);
      if (ev.job_id && JOB_ROW_TYPES.has(ev.type)) {
        if (!state.complete) pending.push(ev);
        else applyJobEvent(ev);
        refreshBatch(false);
      } else if (state.batch) {
        if (ev.type === "batch_finished") {
          state.batch.status = ev.data.status;
          state.batch.finished = ev.time;
          refreshBatch(true);
          notifications.refresh(); // its outcome's notifications exist from now on
        } else if (ev.type === "batch_reopened") {
          state.batch.status = "running";
          state.batch.finished = null;
          state.batch.cancel_requested = false;
        } else if (ev.type === "batch_cancel_requested") {
          state.batch.cancel_requested = true;
        } else if (ev.type === "jobs_added") {
          refreshBatch(true);
        }
      }
      if (state.batch && !state.batch.started && ev.type === "job_started") state.batch.started = ev.time;
      scheduleRender();
    }

    function mergeJob(job) {
      const local = state.jobs.get(job.job_id);
      if (!local || (job.last_event_id || 0) >= (local.last_event_id || 0)) state.jobs.set(job.job_id, job);
      dirty.add(job.job_id);
    }

    // Read page `k` over REST and show it; events that came meanwhile are applied on top.
    async function loadPage(k) {
      const mine = ++generation;
      asked = k;
      state.complete = false;
      scheduleRender();
      const q = new URLSearchParams({ batch_id: batchId, limit: String(PAGE) });
      if (cursors[k]) q.set("cursor", cursors[k]);
      let page;
      try {
        page = await api(`/api/progress/all?${q}`);
      } catch (err) {
        console.warn("sheetbatch: loading rows failed", err);
        if (mine === generation) { asked = pageIndex; state.complete = true; pending = []; scheduleRender(); }
        return;
      }
      if (mine !== generation) return; // another page was asked for meanwhile
      pageIndex = k;
      cursors[k + 1] = page.next_cursor;
      cursors.length = k + 2;
      state.jobs = new Map();
      for (const job of page.jobs) mergeJob(job);
      const waiting = pending;
      pending = [];
      state.complete = true;
      for (const ev of waiting) applyJobEvent(ev);
      fullRender = true;
      refreshBatch(true);
      scheduleRender();
    }

    async function poll() {
      try {
        await fetchBatch();
      } finally {
        await loadPage(pageIndex);
      }
    }

    document.getElementById("prev-page").addEventListener("click", () => {
      if (pageIndex > 0) loadPage(pageIndex - 1);
    });
    document.getElementById("next-page").addEventListener("click", () => {
      if (cursors[pageIndex + 1]) loadPage(pageIndex + 1);
    });

    function scheduleRender() {
      if (renderQueued) return;
      renderQueued = true;
      window.requestAnimationFrame(() => { renderQueued = false; render(); });
    }

    function counts() {
      const c = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
      for (const job of state.jobs.values()) c[job.status] = (c[job.status] || 0) + 1;
      return c;
    }

    function renderRow(job) {
      let tr = rows.get(job.job_id);
      if (!tr) {
        tr = el("tr", { "data-job-id": job.job_id },
          el("td", { class: "num" }), el("td"), el("td"), el("td"), el("td", { class: "err" }));
        rows.set(job.job_id, tr);
      }
      const [rowCell, nameCell, statusCell, phaseCell, errCell] = tr.children;
      tr.dataset.status = job.status;
      tr.dataset.row = String(job.row);
      tr.className = `st-${job.status}`;
      rowCell.textContent = String(job.row);
      nameCell.textContent = shown(job.label || (job.inputs && job.inputs.Company) || "");
      nameCell.title = nameCell.textContent;
      statusCell.replaceChildren(el("span", { class: `badge st-${job.status}`, text: job.status }));
      let phaseText = "";
      if (job.phase && job.status === "running") {
        phaseText = `${job.phase.index}/${job.phase.count} ${job.phase.name}`;
        if (job.fraction > 0 && job.fraction < 1) phaseText += ` (${Math.round(job.fraction * 100)}%)`;
      } else if (job.status === "succeeded" && job.phase) {
        phaseText = `${job.phase.count}/${job.phase.count}`;
      } else if (job.phase) {
        phaseText = `${job.phase.index}/${job.phase.count} ${job.phase.name}`;
      }
      phaseCell.textContent = phaseText;
      errCell.textContent = job.status === "failed" ? shown(job.error || "") : "";
      errCell.title = errCell.textContent;
      return tr;
    }

    function renderChart() {
      const chart = document.getElementById("phase-chart");
      const phases = (state.batch && state.batch.phases) || [];
      const totals = new Map(phases.map((p) => [p, { sum: 0, n: 0 }]));
      for (const job of state.jobs.values()) {
        for (const [name, seconds] of Object.entries(job.phase_seconds || {})) {
          const t = totals.get(name) || { sum: 0, n: 0 };
          t.sum += Number(seconds) || 0; t.n += 1;
          totals.set(name, t);
        }
      }
      const entries = [...totals.entries()].filter(([, t]) => t.n > 0);
      if (!entries.length) {
        chart.replaceChildren(el("p", { class: "muted", text: "No phase finished yet." }));
        return;
      }
      const maxMean = Math.max(...entries.map(([, t]) => t.sum / t.n), 1e-9);
      const list = el("div", { class: "phase-bars" });
      for (const [name, t] of entries) {
        const mean = t.sum / t.n;
        const bar = el("div", { class: "pbar" });
        bar.style.width = `${Math.max(1, (100 * mean) / maxMean)}%`;
        list.append(el("div", { class: "phase-row", "data-phase": name },
          el("span", { class: "pname", text: name }),
          el("span", { class: "ptrack" }, bar),
          el("span", { class: "pval", text: `${fmtSeconds(mean)} avg · ${fmtSeconds(t.sum)} total · ${t.n} rows` })));
      }
      chart.replaceChildren(list);
    }

    function render() {
      const b = state.batch;
      if (!b) return;
      const all = onePage() && state.complete;
      const c = all ? counts() : Object.assign({}, b.counts);
      const total = all ? state.jobs.size : b.total;
      const processed = c.succeeded + c.failed + c.cancelled;
      const percent = total ? (100 * processed) / total : 100;
      document.getElementById("batch-sheet").textContent = shown(b.sheet || "");
      document.getElementById("batch-pipeline").textContent = b.pipeline || "";
      const badge = document.getElementById("batch-status");
      badge.textContent = b.cancel_requested && b.status === "running" ? "cancelling" : b.status;
      badge.dataset.status = b.status;
      badge.className = `badge st-${b.status}`;
      let eta = "";
      if (b.status === "running" && b.started) {
        const elapsed = (Date.now() - Date.parse(b.started)) / 1000;
        eta = processed ? ` · ETA ${fmtSeconds(((total - processed) * elapsed) / processed)}` : " · ETA –";
      }
      setBar(document.getElementById("overall"), percent, `${Math.floor(percent)}% (${processed}/${total})`);
      const summary = document.getElementById("summary");
      summary.textContent = `${c.succeeded} succeeded · ${c.failed} failed · ${c.cancelled} cancelled · `
        + `${c.running} running · ${c.queued} queued${eta}`;
      summary.dataset.processed = String(processed);
      summary.dataset.total = String(total);
      document.getElementById("cancel-btn").hidden = b.status !== "running" || b.cancel_requested;
      document.getElementById("retry-btn").hidden = c.failed === 0;
      const loading = document.getElementById("rows-loading");
      loading.hidden = state.complete;
      loading.textContent = state.complete ? "" : "loading rows…";
      const first = pageIndex * PAGE + 1;
      document.getElementById("pager").hidden = onePage();
      document.getElementById("page-info").textContent = state.jobs.size
        ? `rows ${first}–${first + state.jobs.size - 1} of ${b.total}` : `of ${b.total}`;
      document.getElementById("page-info").dataset.page = String(pageIndex + 1);
      document.getElementById("prev-page").disabled = pageIndex === 0;
      document.getElementById("next-page").disabled = !cursors[pageIndex + 1];
      // Only rows that changed are redrawn; the order is rebuilt when rows come or go.
      for (const id of dirty) { const job = state.jobs.get(id); if (job) renderRow(job); }
      dirty.clear();
      if (fullRender) {
        fullRender = false;
        const jobs = [...state.jobs.values()].sort((a, z) => a.row - z.row || (a.job_id < z.job_id ? -1 : 1));
        const wanted = jobs.map(renderRow);
        wanted.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
        while (tbody.children.length > wanted.length) tbody.lastChild.remove();
      }
      renderChart();
      document.body.dataset.ready = "1";
    }

    const notifications = followNotifications(batchId);
    const stream = new LiveStream(`/events/batches/${encodeURIComponent(batchId)}`, {
      snapshot(data) {
        state.batch = data.batch;
        batchShown = batchAsked + 1; // REST answers asked before it are older
        if (asked === 0) {
          // The snapshot is the first page, exactly at its cursor (unless another page
          // was asked for: a click on Next must not be lost to a stream reconnecting).
          generation += 1;
          state.jobs = new Map(data.jobs.map((j) => [j.job_id, j]));
          cursors[1] = data.jobs_next_cursor;
          cursors.length = 2;
          pending = [];
          state.complete = true;
          fullRender = true;
        } else {
          loadPage(asked); // a reconnect on another page: read it again
        }
        scheduleRender();
      },
      event: applyEvent,
      end() { state.finished = true; scheduleRender(); },
      poll,
    });

    async function act(path, label) {
      const msg = document.getElementById("action-msg");
      msg.textContent = `${label}…`;
      try {
        const body = await api(path, { method: "POST" });
        msg.textContent = label === "Retry" ? `${body.requeued.length} rows requeued` : "cancel requested";
        if (stream.ended) stream.start(stream.cursor); // the batch reopens: follow it again
      } catch (err) {
        msg.textContent = `${label} failed: ${err.message}`;
      }
    }
    document.getElementById("cancel-btn").addEventListener("click",
      () => act(`/api/batches/${encodeURIComponent(batchId)}/cancel`, "Cancel"));
    document.getElementById("retry-btn").addEventListener("click",
      () => act(`/api/batches/${encodeURIComponent(batchId)}/retry`, "Retry"));
    setInterval(() => { if (state.batch && state.batch.status === "running") scheduleRender(); }, 1000);
    stream.start(null);
  }

  // The batch's notifications and their delivery state (deliveries are not log events):
  // read on load and when the batch finishes, then every 3 s while any is pending.
  function followNotifications(batchId) {
    const tbody = document.querySelector("#notifications tbody");
    const none = document.getElementById("no-notifications");
    let timer = null;
    async function load() {
      clearTimeout(timer);
      let pending = false;
      try {
        const body = await api(`/api/batches/${encodeURIComponent(batchId)}/notifications`);
        const rows = body.notifications.map((n) => {
          const last = n.attempts.length ? n.attempts[n.attempts.length - 1] : null;
          const lastText = last ? (last.error || `HTTP ${last.status}`) : "";
          return el("tr", { "data-id": n.id, "data-state": n.state },
            el("td", { text: n.type }), el("td", { class: "url", text: shown(n.url) }),
            el("td", {}, el("span", { class: "badge", "data-status": n.state, text: n.state })),
            el("td", { text: String(n.attempts.length) }), el("td", { text: shown(lastText) }));
        });
        tbody.replaceChildren(...rows);
        none.hidden = rows.length > 0;
        pending = body.notifications.some((n) => n.state === "pending");
      } catch (err) {
        console.warn("sheetbatch: loading notifications failed", err);
        pending = true; // try again
      }
      if (pending) timer = setTimeout(load, 3000);
    }
    load();
    return { refresh: load };
  }

  // ------------------------------------------------------------------ batches list
  function listPage() {
    const batches = new Map();
    const pending = new Map();
    const tbody = document.querySelector("#batches tbody");

    function merge(batch) {
      const local = batches.get(batch.batch_id);
      if (!local || (batch.last_event_id || 0) >= (local.last_event_id || 0)) batches.set(batch.batch_id, batch);
    }

    // Counts per batch come from REST snapshots (versioned by last_event_id), refreshed at
    // most every 250 ms per batch while its events arrive.
    function refresh(batchId) {
      if (pending.has(batchId)) return;
      pending.set(batchId, setTimeout(async () => {
        pending.delete(batchId);
        try { merge(await api(`/api/batches/${encodeURIComponent(batchId)}`)); render(); } catch (err) {
          console.warn("sheetbatch: refreshing", batchId, err);
        }
      }, 250));
    }

    function render() {
      const list = [...batches.values()].sort((a, z) => (a.created < z.created ? 1 : -1));
      document.getElementById("no-batches").hidden = list.length > 0;
      const trs = list.map((b) => {
        const c = b.counts;
        const bar = el("div", { class: "bar" }, el("div", { class: "fill" }), el("span", { class: "text" }));
        setBar(bar, b.percent, `${Math.floor(b.percent)}% (${b.processed}/${b.total})`);
        return el("tr", { "data-batch-id": b.batch_id, "data-status": b.status },
          el("td", {}, el("a", { href: `/batches/${encodeURIComponent(b.batch_id)}`, text: b.batch_id })),
          el("td", { class: "sheet", text: shown(b.sheet), title: shown(b.sheet) }),
          el("td", {}, el("span", { class: `badge st-${b.status}`, text: b.status })),
          el("td", { class: "wide" }, bar),
          el("td", { class: "counts", text: countsText(c) }),
          el("td", { text: b.started ? new Date(b.started).toLocaleString() : "–" }));
      });
      tbody.replaceChildren(...trs);
      document.body.dataset.ready = "1";
    }

    async function poll() {
      const body = await api("/api/batches?limit=100");
      for (const b of body.batches) merge(b);
      render();
    }

    const stream = new LiveStream("/events/progress", {
      snapshot(data) { batches.clear(); for (const b of data.batches) merge(b); render(); },
      event(ev) {
        if (ev.type === "batch_finished" && batches.has(ev.batch_id)) {
          const b = Object.assign({}, batches.get(ev.batch_id), { status: ev.data.status });
          b.counts = Object.assign({}, b.counts, ev.data.counts, { queued: 0, running: 0 });
          b.processed = b.total; b.percent = 100; b.last_event_id = ev.id;
          batches.set(ev.batch_id, b);
          render();
        }
        refresh(ev.batch_id);
      },
      poll,
    });

    // The sheets this server may use: files in its allowed directories, recent Google
    // Sheets, or another Google Sheets URL typed in.
    const OTHER = "\u0000other";
    const sheetSelect = document.getElementById("sheet");
    const urlLabel = document.getElementById("sheet-url-label");
    async function loadSheets() {
      let body;
      try { body = await api("/api/sheets"); } catch (err) {
        document.getElementById("sheet-note").textContent = `cannot list the sheets: ${err.message}`;
        return;
      }
      const groups = [];
      for (const dir of body.directories) {
        const files = body.files.filter((f) => f.directory === dir);
        const group = el("optgroup", { label: `Files in ${dir}` });
        for (const f of files) group.append(el("option", { value: f.path, text: f.name, title: f.path }));
        if (!files.length) group.append(el("option", { value: "", disabled: "", text: "(no .csv or .xlsx file)" }));
        groups.push(group);
      }
      if (body.google.length) {
        const group = el("optgroup", { label: "Google Sheets of recent batches" });
        for (const g of body.google) group.append(el("option", { value: g.spec, text: g.name, title: g.spec }));
        groups.push(group);
      }
      const other = el("option", { value: OTHER, text: "Another Google Sheet (URL)…" });
      const chosen = sheetSelect.value; // read after the wait: the user may have chosen meanwhile
      sheetSelect.replaceChildren(el("option", { value: "", disabled: "", text: "choose a sheet" }), ...groups, other);
      const values = [...sheetSelect.options].map((o) => o.value);
      sheetSelect.value = values.includes(chosen) && chosen ? chosen : "";
      document.getElementById("sheet-note").textContent = body.directories.length
        ? "" : "This server allows no local sheet directory (serve --sheet-dir DIR): Google Sheets only.";
      urlLabel.hidden = sheetSelect.value !== OTHER;
      document.body.dataset.sheetsLoaded = "1";
    }
    sheetSelect.addEventListener("change", () => { urlLabel.hidden = sheetSelect.value !== OTHER; });
    sheetSelect.addEventListener("focus", loadSheets);
    loadSheets();

    // "Name=Found name, Status=Our status" -> {Name: "Found name", Status: "Our status"}.
    function parseOutputColumns(text) {
      const mapping = {};
      for (const entry of text.split(",").map((e) => e.trim()).filter((e) => e)) {
        const at = entry.indexOf("=");
        const output = at > 0 ? entry.slice(0, at).trim() : "";
        const column = at > 0 ? entry.slice(at + 1).trim() : "";
        if (!output || !column) {
          const err = new Error(`write OUTPUT=COLUMN, not ${JSON.stringify(entry)}`);
          err.field = "output_columns";
          throw err;
        }
        mapping[output] = column;
      }
      return mapping;
    }

    const form = document.getElementById("start-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const errorBox = document.getElementById("start-error");
      const noteBox = document.getElementById("start-note");
      errorBox.hidden = true;
      noteBox.hidden = true;
      const sheet = sheetSelect.value === OTHER
        ? document.getElementById("sheet-url").value.trim() : sheetSelect.value;
      const body = { sheet };
      const pipeline = document.getElementById("pipeline").value;
      if (pipeline) body.pipeline = pipeline;
      if (document.getElementById("retry_failed").checked) body.retry_failed = true;
      if (document.getElementById("force").checked) body.force = true;
      try {
        const mapping = parseOutputColumns(document.getElementById("output_columns").value);
        if (Object.keys(mapping).length) body.output_columns = mapping;
        const overwrite = document.getElementById("overwrite").value
          .split(",").map((c) => c.trim()).filter((c) => c);
        if (overwrite.length) body.overwrite = overwrite;
        const notify = document.getElementById("notify").value
          .split(/[\s,]+/).map((u) => u.trim()).filter((u) => u);
        if (notify.length) body.notify = notify;
        const answer = await api("/api/batches", { method: "POST", body });
        if (answer.nothing_to_do) {
          noteBox.textContent = shown(answer.message); // it quotes the sheet's own cells
          noteBox.hidden = false;
          return;
        }
        window.location.assign(answer.urls.dashboard);
      } catch (err) {
        errorBox.textContent = shown(err.field ? `${err.field}: ${err.message}` : err.message);
        errorBox.hidden = false;
      }
    });
    stream.start(null);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page === "batch") batchPage(document.body.dataset.batchId);
    else if (page === "list") listPage();
  });
})();
