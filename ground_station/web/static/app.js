/* SmartEye web UI — shared helpers for every page: DOM building, the JSON API (session cookie +
   CSRF header, 401 → login, 403 → "not allowed"), the nav bar, the live WebSocket with reconnect
   and backoff, formatting, and the event detail panel used by the timeline and the map. */
"use strict";

(function () {
  const SE = {};
  window.SE = SE;
  SE.config = Object.assign(
    {
      tiles_url: null, // e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png"; null: no external requests
      tiles_attribution: "© OpenStreetMap contributors",
      tiles_max_zoom: 19,
      tiles_subdomains: "abc",
    },
    window.SMARTEYE_CONFIG || {},
  );

  // ------------------------------------------------------------------------------------------- DOM
  const SVG_NS = "http://www.w3.org/2000/svg";

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "style") Object.assign(el.style, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  /** h("div", {class: "x", onclick: fn}, "text", child…): an HTML element (text is never parsed as HTML). */
  SE.h = function (tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  };
  /** The same for SVG elements. */
  SE.s = function (tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  };
  const h = SE.h;
  SE.$ = (sel, root = document) => root.querySelector(sel);
  SE.byId = (id) => document.getElementById(id); // every page's `$`

  /**
   * The elements of a filtered list page (pages/filters.html: its filter form and paged_list(…, what)),
   * looked up in one place; a missing one is a page bug, reported by its id.
   */
  SE.listPage = function (what) {
    const ids = {
      form: "filters", fRange: "f-range", fNode: "f-node", fStream: "f-stream", list: what, empty: "empty",
      older: "older", count: "count", pending: "pending", liveToggle: "live-toggle", notice: "notice",
      detail: "detail", layout: "layout",
    };
    const found = {};
    for (const [key, id] of Object.entries(ids)) {
      found[key] = document.getElementById(id);
      if (!found[key]) throw new Error(`list page: no element #${id}`);
    }
    return found;
  };

  /**
   * Starts a list page once its own handlers are set. The controls of paged_list and the filter form work
   * the same on every list page: Apply and "Older" load, the "n new — show" button and turning Live back on
   * reload when messages are waiting, Esc closes the detail (not an open lightbox). Then the choices, the
   * first page, live updates, and the item the URL named (`wanted`).
   */
  SE.startListPage = async function (page, wanted) {
    const { load, loadChoices, select, hasPending, hasSelection, closeDetail } = page;
    const byId = SE.byId;
    byId("filters").addEventListener("submit", (e) => {
      e.preventDefault();
      load(true);
    });
    byId("older").addEventListener("click", () => load(false));
    byId("pending").addEventListener("click", () => load(true));
    const liveToggle = byId("live-toggle");
    liveToggle.addEventListener("change", () => {
      if (liveToggle.checked && hasPending()) load(true);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && hasSelection() && !document.querySelector(".lightbox")) closeDetail();
    });
    if (window.innerWidth < 900) byId("filters-box").open = false;
    loadChoices();
    await load(true);
    SE.live.start();
    if (wanted) select(wanted);
  };

  // A filter <select> keeps a value given by the URL even before the choices that hold it are loaded.
  SE.ensureOption = function (sel, value) {
    if (value && ![...sel.options].some((o) => o.value === value)) sel.append(h("option", { value }, value));
    sel.value = value || "";
  };

  // The stream choices of a filter: the streams seen on the chosen node (all nodes when none is chosen).
  SE.fillStreamChoices = function (select, streamsByNode, node) {
    const names = new Set();
    for (const [n, streams] of streamsByNode) if (!node || n === node) for (const s of streams) names.add(s);
    const cur = select.value;
    select.replaceChildren(h("option", { value: "" }, "All streams"), [...names].sort().map((v) => h("option", { value: v }, v)));
    SE.ensureOption(select, cur && (names.has(cur) || !node) ? cur : "");
  };

  // ------------------------------------------------------------------------------------ formatting
  const DASH = "—";
  SE.DASH = DASH;
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  SE.isNum = isNum;
  SE.nowS = () => Date.now() / 1000;
  const pad = (n, w = 2) => String(n).padStart(w, "0");

  /** v with `digits` decimals and a unit, or "—" when missing. */
  SE.fmtNum = (v, digits = 0, unit = "") => (isNum(v) ? v.toFixed(digits) + (unit ? " " + unit : "") : DASH);
  SE.fmtDate = (t) => {
    if (!isNum(t)) return DASH;
    const d = new Date(t * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  };
  SE.fmtClock = (t, ms = false) => {
    if (!isNum(t)) return DASH;
    const d = new Date(t * 1000);
    const out = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return ms ? `${out}.${pad(d.getMilliseconds(), 3)}` : out;
  };
  SE.fmtTime = (t, ms = false) => (isNum(t) ? `${SE.fmtDate(t)} ${SE.fmtClock(t, ms)}` : DASH);
  SE.fmtDuration = (s) => {
    if (!isNum(s)) return DASH;
    const a = Math.abs(s);
    if (a < 1) return `${Math.round(s * 1000)} ms`;
    if (a < 60) return `${s.toFixed(1)} s`;
    if (a < 3600) return `${Math.floor(a / 60)} min ${Math.round(a % 60)} s`;
    if (a < 86400) return `${Math.floor(a / 3600)} h ${Math.round((a % 3600) / 60)} min`;
    return `${Math.floor(a / 86400)} d ${Math.round((a % 86400) / 3600)} h`;
  };
  SE.fmtAgo = (t, now = SE.nowS()) => {
    if (!isNum(t)) return DASH;
    const d = now - t;
    if (d < -2) return "in the future (clock skew?)";
    if (d < 1.5) return "just now";
    if (d < 60) return `${Math.round(d)} s ago`;
    if (d < 3600) return `${Math.round(d / 60)} min ago`;
    if (d < 86400) return `${Math.round(d / 3600)} h ago`;
    return `${Math.round(d / 86400)} d ago`;
  };
  /** A latency given in seconds, shown in ms. */
  SE.fmtMs = (sec) => {
    if (!isNum(sec)) return DASH;
    const ms = sec * 1000;
    return Math.abs(ms) < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
  };
  SE.fmtLatLon = (lat, lon) => (isNum(lat) && isNum(lon) ? `${lat.toFixed(6)}, ${lon.toFixed(6)}` : DASH);
  SE.fmtMetres = (m) => {
    if (!isNum(m)) return DASH;
    if (m < 10) return `${m.toFixed(1)} m`;
    if (m < 10000) return `${Math.round(m)} m`;
    return `${(m / 1000).toFixed(1)} km`;
  };
  SE.fmtScore = (v) => (isNum(v) ? v.toFixed(2) : DASH);
  /** A count with thousands separators ("91,234"). */
  SE.fmtInt = (v) => (isNum(v) ? Math.round(v).toLocaleString("en-US") : DASH);
  /** A small map-pin icon (inline SVG: no icon font, no external file). */
  SE.pin = () =>
    SE.s("svg", { class: "pin", viewBox: "0 0 16 16", "aria-hidden": "true" }, SE.s("path", { d: "M8 1a5 5 0 0 0-5 5c0 3.6 5 9.5 5 9.5S13 9.6 13 6a5 5 0 0 0-5-5zm0 7.2A2.2 2.2 0 1 1 8 3.8a2.2 2.2 0 0 1 0 4.4z" }));
  SE.humanize = (v) => (v === null || v === undefined || v === "" ? DASH : String(v).replace(/_/g, " "));

  const PALETTE = ["#d62839", "#1f63d6", "#2a9d3c", "#e07b00", "#8e3bc4", "#00838f", "#c2185b", "#7a5c00", "#455a64", "#5e35b1"];
  const FIXED = { person: "#d62839", car: "#1f63d6", truck: "#00838f", bus: "#7a5c00", bicycle: "#2a9d3c", motorcycle: "#e07b00" };
  /** A stable colour per label. */
  SE.labelColor = (label) => {
    if (FIXED[label]) return FIXED[label];
    let x = 7;
    for (const ch of String(label)) x = (x * 31 + ch.codePointAt(0)) >>> 0;
    return PALETTE[x % PALETTE.length];
  };

  /** The geo line of an event: "lat, lon ± 3.2 m", or why there is none. */
  SE.geoText = (ev) => {
    const g = ev && ev.geo;
    if (g && isNum(g.lat) && isNum(g.lon)) {
      const unc = isNum(g.uncertainty_m) ? `± ${SE.fmtMetres(g.uncertainty_m)}` : "± unbounded";
      return `${SE.fmtLatLon(g.lat, g.lon)} ${unc}`;
    }
    return null;
  };
  const GEO_STATUS = {
    ok: "ok",
    no_telemetry: "no telemetry for this frame",
    stale_telemetry: "telemetry too old",
    above_horizon: "above the horizon",
  };
  SE.geoStatusText = (status) => (status ? GEO_STATUS[status] || SE.humanize(status) : DASH);

  // ------------------------------------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, message, detail = null) {
      super(message);
      this.status = status;
      this.detail = detail; // the body's `detail` as sent (a 422 lists each field's error with its `loc`)
    }
  }
  SE.ApiError = ApiError;
  let csrfToken = null;
  SE.session = null;

  SE.loginUrl = () => {
    const next = location.pathname + location.search;
    return next && !next.startsWith("/login") && next !== "/" ? "/login?next=" + encodeURIComponent(next) : "/login";
  };

  /**
   * A JSON API call. Mutating calls carry the CSRF token. 401 sends the browser to /login (unless
   * opts.allow401); any other failure throws ApiError (status 403 → "Not allowed: …").
   */
  SE.api = async function (method, path, body, opts = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (!["GET", "HEAD"].includes(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "The ground station is not reachable (network error).");
    }
    if (res.status === 401 && !opts.allow401) {
      location.assign(SE.loginUrl());
      throw new ApiError(401, "Not logged in.");
    }
    let data = null;
    if ((res.headers.get("content-type") || "").includes("json")) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
      if (typeof detail !== "string" || !detail) detail = `${res.status} ${res.statusText || "error"}`;
      if (res.status === 403) detail = `Not allowed: ${detail}`;
      throw new ApiError(res.status, detail, data && data.detail);
    }
    return data;
  };

  /**
   * One page of a newest-first listing (/api/events, /api/alerts, …): `query` holds its filters, `cursor`
   * is the previous page's next_cursor (none: the first page). Every list pages the same way.
   */
  SE.fetchPage = function (path, query, limit, cursor) {
    const p = new URLSearchParams(query || undefined);
    p.set("limit", String(limit));
    if (cursor) p.set("cursor", cursor);
    return SE.api("GET", `${path}?${p}`);
  };

  /** A red notice with the error's message. */
  SE.errorBox = (err) => h("div", { class: "notice notice-error", role: "alert" }, (err && err.message) || String(err));

  /** The page-wide "not allowed" block (403). */
  SE.forbidden = (what) =>
    h(
      "div",
      { class: "card forbidden", id: "forbidden", role: "alert" },
      h("h1", null, "Not allowed"),
      h("p", null, `Your role (${SE.session ? SE.session.role : "?"}) may not ${what}.`),
      h("p", null, h("a", { href: "/timeline" }, "Back to the timeline")),
    );

  // ------------------------------------------------------------------------------- session and nav
  const NAV = [
    ["timeline", "Timeline"],
    ["alerts", "Alerts"],
    ["live", "Live"],
    ["health", "Health"],
    ["map", "Map"],
    ["rules", "Zones & rules"],
    ["users", "Users", "admin"],
  ];

  /** Check the session (401 → /login), draw the nav bar, return {username, role, csrf_token}. */
  SE.init = async function (page) {
    let session;
    try {
      session = await SE.api("GET", "/api/session");
    } catch (err) {
      if (err.status !== 401) {
        document.body.prepend(SE.errorBox(err));
      }
      throw err;
    }
    SE.session = session;
    csrfToken = session.csrf_token;
    renderNav(page);
    loadScript("/static/notify.js"); // alert notifications, on every page
    return session;
  };

  function loadScript(src) {
    if (document.querySelector(`script[src="${src}"]`)) return;
    document.head.append(h("script", { src, defer: true }));
  }

  function renderNav(page) {
    const nav = document.getElementById("nav");
    if (!nav) return;
    const s = SE.session;
    nav.replaceChildren(
      h("a", { class: "brand", href: "/timeline" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), "SmartEye"),
      h(
        "nav",
        { class: "nav-links", "aria-label": "Pages" },
        NAV.filter(([, , role]) => !role || s.role === role).map(([p, title]) =>
          h("a", { href: "/" + p, class: p === page ? "active" : null, "aria-current": p === page ? "page" : null }, title),
        ),
      ),
      h(
        "div",
        { class: "nav-right" },
        h(
          "span",
          { id: "live-state", class: "live-state", hidden: true, dataset: { state: "off" }, title: "Live updates (WebSocket)" },
          h("span", { class: "dot" }),
          h("span", { class: "live-text" }, "off"),
        ),
        h(
          "span",
          { class: "user", id: "nav-user" },
          h("span", { class: "user-name" }, s.username),
          h("span", { class: `role role-${s.role}`, id: "nav-role" }, s.role),
        ),
        h("button", { type: "button", class: "btn-quiet btn-small", id: "logout", onclick: logout }, "Log out"),
      ),
    );
  }

  async function logout() {
    try {
      await SE.api("POST", "/api/logout", {}, { allow401: true });
    } catch {
      /* logged out anyway */
    }
    location.assign("/login");
  }

  // ------------------------------------------------------------------------------ live WebSocket
  const live = { ws: null, kinds: new Map(), openFns: [], started: false, opens: 0, attempts: 0, timer: null, state: "off" };

  function setLiveState(state, text) {
    live.state = state;
    const el = document.getElementById("live-state");
    if (!el) return;
    el.hidden = false;
    el.dataset.state = state;
    el.querySelector(".live-text").textContent = text;
  }

  function safe(fn, ...args) {
    try {
      fn(...args);
    } catch (err) {
      console.error(err);
    }
  }

  function connect() {
    clearTimeout(live.timer);
    live.timer = null;
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/live";
    setLiveState("connecting", live.opens ? "reconnecting…" : "connecting…");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      scheduleReconnect();
      return;
    }
    live.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      const reconnect = live.opens > 0;
      live.opens += 1;
      live.attempts = 0;
      setLiveState("open", "live");
      for (const fn of live.openFns) safe(fn, reconnect);
    };
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== "object") return;
      for (const fn of live.kinds.get(msg.kind) || []) safe(fn, msg);
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (e) => {
      if (live.ws !== ws) return;
      live.ws = null;
      if (e.code === 4403) {
        setLiveState("denied", "live: not allowed");
        return;
      }
      if (!opened || e.code === 4401 || e.code === 1008) {
        // Refused (a close before accept reaches the browser as a failed handshake, code 1006):
        // maybe the session expired. This redirects to /login on 401.
        SE.api("GET", "/api/session").catch(() => {});
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    const delay = Math.min(30, 2 ** live.attempts) * (0.8 + Math.random() * 0.4);
    live.attempts += 1;
    setLiveState("closed", `reconnecting in ${Math.ceil(delay)} s`);
    live.timer = setTimeout(connect, delay * 1000);
  }

  function retryNow() {
    if (live.started && !live.ws) {
      live.attempts = 0;
      connect();
    }
  }

  SE.live = {
    /** Call fn(message) for every pushed message of this kind ("event", "status", "availability", "telemetry", "alert", "counts"). */
    on(kind, fn) {
      if (!live.kinds.has(kind)) live.kinds.set(kind, []);
      live.kinds.get(kind).push(fn);
      return this;
    },
    /** Call fn(isReconnect) whenever the socket opens: after a reconnect, reload what may have been missed. */
    onOpen(fn) {
      live.openFns.push(fn);
      return this;
    },
    start() {
      if (live.started) return;
      live.started = true;
      connect();
      window.addEventListener("online", retryNow);
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden) retryNow();
      });
    },
    get state() {
      return live.state;
    },
  };

  // ------------------------------------------------------------------------------- event detail
  /** A snapshot with the box drawn over it (box_norm: fractions of the frame). */
  function snapshotFrame(src, box, tag) {
    const frame = h("div", { class: "snap-frame" });
    const img = h("img", { src, alt: `snapshot: ${tag}`, class: "snap-img" });
    frame.append(img);
    if (box && [box.x1, box.y1, box.x2, box.y2].every(isNum)) {
      const clamp = (v) => Math.min(1, Math.max(0, v));
      const x1 = clamp(box.x1);
      const y1 = clamp(box.y1);
      const el = h(
        "div",
        { class: "snap-box" + (y1 < 0.06 ? " below" : "") },
        h("span", { class: "snap-tag" }, tag),
      );
      Object.assign(el.style, {
        left: `${x1 * 100}%`,
        top: `${y1 * 100}%`,
        width: `${(clamp(box.x2) - x1) * 100}%`,
        height: `${(clamp(box.y2) - y1) * 100}%`,
      });
      frame.append(el);
    }
    return { frame, img };
  }

  /** Full-screen view of a snapshot with its box; click or Escape closes it. */
  SE.lightbox = function (src, box, tag) {
    const { frame } = snapshotFrame(src, box, tag);
    const overlay = h("div", { class: "lightbox", role: "dialog", "aria-label": "Snapshot" }, frame);
    const close = () => {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
    };
    const onKey = (e) => {
      if (e.key === "Escape") close();
    };
    overlay.addEventListener("click", close);
    document.addEventListener("keydown", onKey);
    document.body.append(overlay);
  };

  const kv = (rows) =>
    h(
      "dl",
      { class: "kv" },
      rows.filter(Boolean).map(([k, v, attrs]) => [h("dt", null, k), h("dd", attrs || null, v)]),
    );

  /**
   * Fill `box` with the detail of one event: header, snapshot with the box, ground position,
   * timing, box and every message. opts.onClose adds a close button.
   */
  SE.renderEventDetail = async function (box, eventId, opts = {}) {
    box.replaceChildren(h("p", { class: "muted" }, "Loading event…"));
    let d;
    try {
      d = await SE.api("GET", `/api/events/${encodeURIComponent(eventId)}`);
    } catch (err) {
      box.replaceChildren(closeRow(opts), SE.errorBox(err));
      return null;
    }
    const msgs = (d.messages || []).slice().sort((a, b) => a.seq - b.seq);
    if (!msgs.length) {
      box.replaceChildren(closeRow(opts), h("p", { class: "empty" }, "This event has no messages."));
      return d;
    }
    const first = msgs[0];
    const last = msgs[msgs.length - 1];
    const end = msgs.find((m) => m.type === "end");
    const geoMsg = [...msgs].reverse().find((m) => m.geo);
    // The backend may say which message's frame the snapshot is (snapshot_seq); else the first one.
    const snapMsg = (isNum(d.snapshot_seq) && msgs.find((m) => m.seq === d.snapshot_seq)) || first;
    const color = SE.labelColor(last.label);

    const head = h(
      "div",
      { class: "detail-head" },
      h(
        "h2",
        { id: "detail-title" },
        h("span", { class: "chip-dot", style: { background: color } }),
        last.label,
        h("span", { class: `badge t-${last.type}` }, end ? `ended · ${SE.humanize(end.end_reason || "")}` : last.type),
      ),
      opts.onClose
        ? h("button", { type: "button", class: "icon-btn", "aria-label": "Close", id: "detail-close", onclick: opts.onClose }, "×")
        : null,
    );
    const sub = h(
      "p",
      { class: "sub" },
      `${last.node} / ${last.stream} · track #${last.track_id} · top score ${SE.fmtScore(last.top_score)} · `,
      h("code", null, d.event_id || eventId),
    );

    let snap;
    if (d.has_snapshot) {
      const src = `/api/events/${encodeURIComponent(d.event_id || eventId)}/snapshot`;
      const tag = `${snapMsg.label} ${SE.fmtScore(snapMsg.score)}`;
      const { frame, img } = snapshotFrame(src, snapMsg.box_norm, tag);
      frame.id = "detail-snapshot";
      frame.title = "Click for full size";
      frame.addEventListener("click", () => SE.lightbox(src, snapMsg.box_norm, tag));
      snap = h(
        "figure",
        { class: "snap" },
        frame,
        h(
          "figcaption",
          null,
          h("span", null, `Box of message #${snapMsg.seq} (${snapMsg.type}), ${SE.fmtClock(snapMsg.capture_time, true)}`),
          h("a", { href: src, target: "_blank", rel: "noopener" }, "open full size"),
        ),
      );
      img.addEventListener("error", () => frame.replaceWith(h("div", { class: "notice notice-warn" }, "The snapshot could not be loaded.")));
    } else {
      snap = h("p", { class: "muted small" }, "No snapshot stored for this event.");
    }

    const geoSection = [h("h3", null, "Position on the ground")];
    if (geoMsg) {
      const g = geoMsg.geo;
      geoSection.push(
        kv([
          ["Lat, lon", SE.fmtLatLon(g.lat, g.lon), { id: "detail-geo", class: "mono" }],
          ["Uncertainty", isNum(g.uncertainty_m) ? `± ${SE.fmtMetres(g.uncertainty_m)} (1σ)` : "unbounded (grazing ray)"],
          ["Pose from", g.source === "klv" ? "KLV" : g.source === "mavlink" ? "MAVLink" : SE.humanize(g.source)],
          ["Telemetry age", SE.fmtMs(g.telemetry_age_s)],
          geoMsg !== last ? ["From message", `#${geoMsg.seq} (${geoMsg.type})`] : null,
        ]),
      );
    } else {
      geoSection.push(
        h("p", { class: "muted small" }, last.geo_status ? `No position: ${SE.geoStatusText(last.geo_status)}.` : "This stream has no geolocation."),
      );
    }

    const rt = isNum(last.received_time) ? last.received_time : null;
    const timing = [
      h("h3", null, "Timing"),
      kv([
        ["First seen", SE.fmtTime(last.first_seen, true)],
        ["Last seen", SE.fmtTime(last.last_seen, true)],
        ["Tracked for", SE.fmtDuration(last.last_seen - last.first_seen)],
        ["Capture → detect", SE.fmtMs(last.detect_time - last.capture_time)],
        ["Detect → publish", SE.fmtMs(last.publish_time - last.detect_time)],
        ["Capture → publish", SE.fmtMs(last.publish_time - last.capture_time), { id: "detail-latency", class: "big" }],
        rt ? ["Publish → received", SE.fmtMs(rt - last.publish_time) + (rt < last.publish_time ? " (clocks differ)" : "")] : null,
        ["Model", last.model],
      ]),
    ];

    const b = last.box;
    const bn = last.box_norm;
    const boxSection = [
      h("h3", null, "Box (latest)"),
      kv([
        ["Pixels", b ? `${Math.round(b.x1)}, ${Math.round(b.y1)} → ${Math.round(b.x2)}, ${Math.round(b.y2)} (${Math.round(b.x2 - b.x1)} × ${Math.round(b.y2 - b.y1)})` : DASH],
        ["Normalised", bn ? `${bn.x1.toFixed(3)}, ${bn.y1.toFixed(3)} → ${bn.x2.toFixed(3)}, ${bn.y2.toFixed(3)}` : DASH],
        ["Frame", `${last.frame_width} × ${last.frame_height}`],
        ["Class", `${last.label} (${last.class_id})`],
      ]),
    ];

    const table = h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data msgs", id: "detail-messages" },
        h(
          "thead",
          null,
          h("tr", null, h("th", null, "#"), h("th", null, "Type"), h("th", null, "Captured"), h("th", { class: "num" }, "Score"), h("th", null, "Box (px)"), h("th", { class: "num" }, "Latency"), h("th", null, "Position")),
        ),
        h(
          "tbody",
          null,
          msgs.map((m) =>
            h(
              "tr",
              null,
              h("td", null, m.seq),
              h("td", null, h("span", { class: `badge t-${m.type}` }, m.type), m.end_reason ? h("div", { class: "small muted" }, SE.humanize(m.end_reason)) : null),
              h("td", { class: "nowrap" }, SE.fmtClock(m.capture_time, true)),
              h("td", { class: "num" }, SE.fmtScore(m.score)),
              h("td", { class: "nowrap" }, m.box ? `${Math.round(m.box.x1)},${Math.round(m.box.y1)} ${Math.round(m.box.x2 - m.box.x1)}×${Math.round(m.box.y2 - m.box.y1)}` : DASH),
              h("td", { class: "num" }, SE.fmtMs(m.publish_time - m.capture_time)),
              h("td", { class: "small" }, SE.geoText(m) || SE.geoStatusText(m.geo_status)),
            ),
          ),
        ),
      ),
    );

    box.replaceChildren(head, sub, snap, ...geoSection, ...timing, ...boxSection, h("h3", null, `Messages (${msgs.length})`), table);
    box.dataset.eventId = d.event_id || eventId;
    return d;
  };

  function closeRow(opts) {
    return opts.onClose
      ? h("div", { class: "detail-head" }, h("h2", null, "Event"), h("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: opts.onClose }, "×"))
      : "";
  }
})();
