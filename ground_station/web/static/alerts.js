/* Alerts: the situations the edge nodes' rules raised, newest first, filtered, updated live (each alert
   message pushed on /api/live refreshes its alert from the API), with the detail beside the list: the
   snapshot the edge drew (zone or line, objects), the clip around the start (<video>, the station serves it
   with HTTP Range), the objects, the times and the history. Supervisors and admins acknowledge and resolve
   (recorded with who and when); everyone sees who did. Two more views for supervisors: webhook deliveries
   (failures first, with a retry) and the audit log (rules edits, acknowledgements, resolves). */
"use strict";

(async function () {
  const { h, api, isNum, DASH, byId: $ } = SE;
  const PAGE = 50;
  const session = await SE.init("alerts");
  const supervisor = ["admin", "supervisor"].includes(session.role);

  const { form, fRange, fNode, fStream, list, empty, older, count: countEl, pending, liveToggle, detail, layout, notice } =
    SE.listPage("alerts");
  const fRule = $("f-rule");
  const fState = $("f-state");
  const fAck = $("f-ack");
  const fResolved = $("f-resolved");

  const st = {
    alerts: new Map(), // alert_id → the alert as the API returns it
    rows: new Map(), // alert_id → its <li>
    cursor: null,
    loadSeq: 0,
    filters: null,
    selected: null,
    pending: 0,
    streams: new Map(), // node → Set(stream)
    rules: new Set(),
    clips: new Map(), // alert_id → its <video>, kept across redraws so playback goes on
  };
  const SEVERITIES = ["critical", "warning", "info"];
  const SEVERITY_CLASS = { critical: "bad", warning: "warn", info: "info" };

  // -------------------------------------------------------------------------------------- filters
  function readForm() {
    const severity = [...form.querySelectorAll('input[name="severity"]:checked')].map((i) => i.value);
    return {
      range: fRange.value,
      start: fRange.value ? SE.nowS() - Number(fRange.value) : null,
      node: fNode.value,
      stream: fStream.value,
      rule: fRule.value.trim(),
      severity: severity.length === SEVERITIES.length ? [] : severity,
      state: fState.value,
      acknowledged: fAck.value,
      resolved: fResolved.value,
    };
  }

  function apiQuery(f) {
    const p = new URLSearchParams();
    if (isNum(f.start)) p.set("start", f.start.toFixed(3));
    for (const k of ["node", "stream", "rule", "acknowledged", "resolved"]) if (f[k]) p.set(k, f[k]);
    for (const s of f.severity) p.append("severity", s);
    if (f.state === "active") ["start", "update"].forEach((s) => p.append("state", s));
    else if (f.state) p.set("state", f.state);
    return p;
  }

  /** The same filters, for an alert that arrives live. */
  function matches(a) {
    const f = st.filters;
    if (!f) return true;
    if (isNum(f.start) && a.start_time < f.start) return false;
    if ((f.node && a.node !== f.node) || (f.stream && a.stream !== f.stream) || (f.rule && a.rule !== f.rule)) return false;
    if (f.severity.length && !f.severity.includes(a.severity)) return false;
    if (f.state === "active" && a.state === "end") return false;
    if (f.state === "end" && a.state !== "end") return false;
    if (f.acknowledged && String(Boolean(a.acknowledged_by)) !== f.acknowledged) return false;
    if (f.resolved && String(Boolean(a.resolved_by)) !== f.resolved) return false;
    return true;
  }

  function syncUrl() {
    const f = st.filters || readForm();
    const p = new URLSearchParams();
    for (const k of ["range", "node", "stream", "rule", "state", "acknowledged", "resolved"]) if (f[k]) p.set(k, f[k]);
    for (const s of f.severity) p.append("severity", s);
    if (st.selected) p.set("alert", st.selected);
    const qs = p.toString();
    history.replaceState(null, "", (qs ? `${location.pathname}?${qs}` : location.pathname) + location.hash);
  }

  function applyUrl() {
    const p = new URLSearchParams(location.search);
    const pick = (sel, v) => (sel.value = [...sel.options].some((o) => o.value === v) ? v : "");
    pick(fRange, p.get("range") || "");
    ensureOption(fNode, p.get("node") || "");
    ensureOption(fStream, p.get("stream") || "");
    fRule.value = p.get("rule") || "";
    pick(fState, p.get("state") || "");
    pick(fAck, p.get("acknowledged") || "");
    pick(fResolved, p.get("resolved") || "");
    const sev = p.getAll("severity");
    for (const box of form.querySelectorAll('input[name="severity"]')) box.checked = !sev.length || sev.includes(box.value);
    return p.get("alert");
  }

  const ensureOption = SE.ensureOption;
  const fillStreams = () => SE.fillStreamChoices(fStream, st.streams, fNode.value);

  function remember(a) {
    if (!st.streams.has(a.node)) st.streams.set(a.node, new Set());
    const before = st.streams.get(a.node).size;
    st.streams.get(a.node).add(a.stream);
    if (!st.rules.has(a.rule)) {
      st.rules.add(a.rule);
      $("rule-names").replaceChildren(...[...st.rules].sort().map((r) => h("option", { value: r })));
    }
    return st.streams.get(a.node).size !== before;
  }

  async function loadChoices() {
    try {
      const nodes = await api("GET", "/api/nodes");
      for (const n of nodes) {
        if (!st.streams.has(n.node)) st.streams.set(n.node, new Set());
        for (const s of n.streams || []) st.streams.get(n.node).add(s.stream);
      }
    } catch {
      /* the list still works without the choices */
    }
    const cur = fNode.value;
    fNode.replaceChildren(h("option", { value: "" }, "All nodes"), [...st.streams.keys()].sort().map((n) => h("option", { value: n }, n)));
    ensureOption(fNode, cur);
    fillStreams();
  }

  // -------------------------------------------------------------------------------------- the list
  const stateText = (a) => (a.state === "end" ? "ended" : "active");
  const whereText = (a) =>
    a.zone ? `zone ${a.zone}` : a.line ? `line ${a.line}${a.direction && a.direction !== "any" ? ` · ${a.direction}` : ""}` : "";

  function objectsText(a) {
    const labels = {};
    for (const o of a.objects || []) labels[o.label] = (labels[o.label] || 0) + 1;
    const parts = Object.entries(labels).map(([l, n]) => (n > 1 ? `${n} × ${l}` : l));
    return parts.length ? parts.join(", ") : `${a.count} object${a.count === 1 ? "" : "s"}`;
  }

  function supervisionBadges(a) {
    if (a.resolved_by) return h("span", { class: "badge ok al-sup", title: `Resolved by ${a.resolved_by} at ${SE.fmtTime(a.resolved_time)}` }, `resolved · ${a.resolved_by}`);
    if (a.acknowledged_by) return h("span", { class: "badge info al-sup", title: `Acknowledged by ${a.acknowledged_by} at ${SE.fmtTime(a.acknowledged_time)}` }, `ack · ${a.acknowledged_by}`);
    return null;
  }

  function rowFor(a, fresh) {
    const thumb = a.snapshot_url
      ? h("img", { class: "thumb", src: a.snapshot_url, alt: "", loading: "lazy" })
      : h("div", { class: "thumb-none" }, "no snapshot");
    const duration = (a.end_time || a.update_time) - a.start_time;
    const li = h(
      "li",
      {
        class: `event alert sev-${a.severity}` + (a.alert_id === st.selected ? " selected" : "") + (fresh ? " fresh" : "") + (a.state === "end" ? " ended" : ""),
        dataset: { alertId: a.alert_id, state: a.state, rulesVersion: String(a.rules_version) },
      },
      h(
        "button",
        { type: "button", class: "event-btn", onclick: () => select(a.alert_id) },
        thumb,
        h(
          "div",
          { class: "ev-main" },
          h(
            "div",
            { class: "ev-title" },
            h("span", { class: `badge ${SEVERITY_CLASS[a.severity] || ""}` }, a.severity),
            h("span", { class: "ev-label" }, a.rule),
            h("span", { class: `badge al-state ${a.state === "end" ? "t-end" : "t-new"}` }, stateText(a)),
            supervisionBadges(a),
            a.clip_url ? h("span", { class: "badge", title: "A clip is attached" }, "clip") : null,
          ),
          h("div", { class: "ev-sub" }, [SE.humanize(a.rule_kind), whereText(a), `${a.node} / ${a.stream}`].filter(Boolean).join(" · ")),
          h("div", { class: "ev-geo" }, objectsText(a), a.line_counts ? ` · in ${a.line_counts.in || 0} / out ${a.line_counts.out || 0}` : ""),
        ),
        h(
          "div",
          { class: "ev-meta" },
          h("div", { class: "clock" }, SE.fmtClock(a.start_time)),
          h("div", null, SE.fmtDate(a.start_time)),
          h("div", null, a.state === "end" ? `lasted ${SE.fmtDuration(duration)}` : `for ${SE.fmtDuration(SE.nowS() - a.start_time)}`),
        ),
      ),
    );
    return li;
  }

  function putRow(a, fresh) {
    const old = st.rows.get(a.alert_id);
    const li = rowFor(a, fresh && !old);
    st.rows.set(a.alert_id, li);
    if (old) {
      old.replaceWith(li);
      return;
    }
    // Newest start first: before the first row that started earlier.
    const next = [...st.rows.entries()].find(([id]) => id !== a.alert_id && st.alerts.get(id).start_time < a.start_time);
    if (next && next[1].isConnected) list.insertBefore(li, next[1]);
    else list.append(li);
  }

  function updateCount() {
    const n = st.rows.size;
    countEl.textContent = n ? `${n}${st.cursor ? "+" : ""} shown` : "";
    empty.hidden = n > 0;
  }

  function updatePending() {
    pending.hidden = st.pending === 0;
    pending.textContent = `${st.pending} new alert${st.pending === 1 ? "" : "s"} — show`;
  }

  async function load(reset) {
    const seq = ++st.loadSeq;
    if (reset) {
      st.filters = readForm();
      st.cursor = null;
      st.pending = 0;
      updatePending();
      syncUrl();
    }
    older.disabled = true;
    let page;
    try {
      page = await SE.fetchPage("/api/alerts", apiQuery(st.filters), PAGE, reset ? null : st.cursor);
    } catch (err) {
      if (seq === st.loadSeq) notice.replaceChildren(SE.errorBox(err));
      older.disabled = false;
      return;
    }
    if (seq !== st.loadSeq) return;
    notice.replaceChildren();
    if (reset) {
      st.rows.clear();
      list.replaceChildren();
    }
    let newStream = false;
    for (const a of page.items) {
      st.alerts.set(a.alert_id, a);
      newStream = remember(a) || newStream;
      putRow(a, false);
    }
    if (newStream) fillStreams();
    st.cursor = page.next_cursor;
    older.hidden = !st.cursor;
    older.disabled = false;
    updateCount();
  }

  // ------------------------------------------------------------------------------------ live updates
  const refreshing = new Map(); // alert_id → "running" | "again": one request per alert at a time

  async function refreshAlert(id, fresh) {
    if (refreshing.has(id)) {
      refreshing.set(id, "again");
      return;
    }
    refreshing.set(id, "running");
    try {
      const a = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
      onAlert(a, fresh);
    } catch (err) {
      if (err.status !== 404) console.warn(`alert ${id}:`, err.message);
    } finally {
      const again = refreshing.get(id) === "again";
      refreshing.delete(id);
      if (again) refreshAlert(id, false);
    }
  }

  function onAlert(a, fresh) {
    const known = st.rows.has(a.alert_id);
    st.alerts.set(a.alert_id, a);
    if (remember(a)) fillStreams();
    if (known) putRow(a, false);
    else if (matches(a)) {
      if (liveToggle.checked) putRow(a, fresh);
      else {
        st.pending += 1;
        updatePending();
      }
    }
    updateCount();
    if (st.selected === a.alert_id) renderDetail(a);
  }

  SE.live.on("alert", (m) => {
    if (m && m.alert_id) refreshAlert(m.alert_id, m.state === "start");
  });
  SE.live.onOpen((reconnect) => {
    if (reconnect) load(true); // what arrived while the socket was down
  });

  // -------------------------------------------------------------------------------------- the detail
  function select(id) {
    st.selected = id;
    for (const [rid, li] of st.rows) li.classList.toggle("selected", rid === id);
    layout.classList.add("with-detail");
    detail.hidden = false;
    syncUrl();
    const known = st.alerts.get(id);
    if (known) renderDetail(known);
    else detail.replaceChildren(h("p", { class: "muted" }, "Loading alert…"));
    loadDetail(id);
  }

  async function loadDetail(id) {
    try {
      const a = await api("GET", `/api/alerts/${encodeURIComponent(id)}`);
      st.alerts.set(id, a);
      if (st.selected === id) renderDetail(a);
    } catch (err) {
      if (st.selected === id) detail.replaceChildren(closeButton(), SE.errorBox(err));
    }
  }

  function closeDetail() {
    st.selected = null;
    for (const li of st.rows.values()) li.classList.remove("selected");
    layout.classList.remove("with-detail");
    detail.hidden = true;
    detail.replaceChildren();
    syncUrl();
  }

  const closeButton = () => h("button", { type: "button", class: "icon-btn", "aria-label": "Close", id: "detail-close", onclick: closeDetail }, "×");
  const kv = (rows) => h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v, attrs]) => [h("dt", null, k), h("dd", attrs || null, v)]));
  const lag = (sec) => (isNum(sec) && Math.abs(sec) >= 10 ? SE.fmtDuration(sec) : SE.fmtMs(sec));
  const fmtBytes = (n) => (!isNum(n) ? DASH : n < 1e6 ? `${Math.round(n / 1000)} kB` : `${(n / 1e6).toFixed(1)} MB`);

  function snapshotSection(a) {
    if (!a.snapshot_url) {
      return h("p", { class: "muted small", id: "detail-no-snapshot" }, "No snapshot received for this alert.");
    }
    const img = h("img", { src: a.snapshot_url, alt: `snapshot of alert ${a.rule}`, class: "snap-img", id: "detail-snapshot" });
    img.addEventListener("error", () => img.replaceWith(h("div", { class: "notice notice-warn" }, "The snapshot could not be loaded.")));
    const frame = h("div", { class: "snap-frame", title: "Click for full size", onclick: () => SE.lightbox(a.snapshot_url, null, a.rule) }, img);
    return h(
      "figure",
      { class: "snap" },
      frame,
      h("figcaption", null, h("span", null, `At the start, ${SE.fmtTime(a.start_time)}: ${whereText(a) || "the zone"} and the objects as the edge drew them`), h("a", { href: a.snapshot_url, target: "_blank", rel: "noopener" }, "open full size")),
    );
  }

  function clipSection(a) {
    const out = [h("h3", null, "Clip")];
    if (!a.clip_url) {
      const young = SE.nowS() - a.start_time < 120;
      out.push(
        h(
          "p",
          { class: "muted small", id: "detail-no-clip" },
          a.clip ? "The clip was announced; it has not reached the station yet." : young ? "The clip arrives a few seconds after the start…" : "No clip for this alert (clips off, or the stream had no video).",
        ),
      );
      return out;
    }
    let video = st.clips.get(a.alert_id);
    if (!video || video.dataset.src !== a.clip_url) {
      video = h("video", { id: "detail-clip", class: "clip", controls: true, preload: "metadata", playsinline: true, muted: true, dataset: { src: a.clip_url } });
      video.muted = true; // no audio track; muted lets it start without a gesture
      video.src = a.clip_url;
      st.clips.clear();
      st.clips.set(a.alert_id, video);
    }
    out.push(video);
    const c = a.clip;
    if (c) {
      const offset = a.start_time - c.start_time;
      out.push(
        h(
          "div",
          { class: "clip-caption small muted" },
          h("span", null, `${SE.fmtClock(c.start_time)} → ${SE.fmtClock(c.end_time)} · ${SE.fmtDuration(c.end_time - c.start_time)} · ${fmtBytes(c.bytes)}`),
          isNum(offset) && offset > 0
            ? h("button", { type: "button", class: "btn-small", id: "clip-to-start", onclick: () => { video.currentTime = offset; video.play().catch(() => {}); } }, `Go to the start (${offset.toFixed(1)} s)`)
            : null,
        ),
      );
    }
    return out;
  }

  function supervisionSection(a) {
    const who = (name, t) => (name ? h("span", null, h("strong", null, name), ` · ${SE.fmtTime(t)} (${SE.fmtDuration(t - a.start_time)} after the start)`) : h("span", { class: "muted" }, "not yet"));
    const box = h(
      "section",
      { class: "supervise", id: "supervise" },
      kv([
        ["Acknowledged", who(a.acknowledged_by, a.acknowledged_time), { id: "detail-acknowledged" }],
        ["Resolved", who(a.resolved_by, a.resolved_time), { id: "detail-resolved" }],
      ]),
    );
    if (!supervisor || a.resolved_by) return box;
    const note = h("input", { type: "text", id: "supervise-note", placeholder: "Note for the audit log (optional)", maxlength: "2000" });
    const msg = h("div", { id: "supervise-error" });
    const act = async (action, button) => {
      button.disabled = true;
      try {
        const body = note.value.trim() ? { note: note.value.trim() } : {};
        const updated = await api("POST", `/api/alerts/${encodeURIComponent(a.alert_id)}/${action}`, body);
        note.value = ""; // said once, with this action
        onAlert(updated, false);
      } catch (err) {
        msg.replaceChildren(SE.errorBox(err));
        button.disabled = false;
        if (err.status === 409) loadDetail(a.alert_id); // someone else was quicker: show who
      }
    };
    const ack = a.acknowledged_by ? null : h("button", { type: "button", class: "btn-primary", id: "acknowledge", onclick: (e) => act("acknowledge", e.currentTarget) }, "Acknowledge");
    const resolve = h("button", { type: "button", id: "resolve", onclick: (e) => act("resolve", e.currentTarget) }, "Resolve");
    box.append(h("div", { class: "supervise-actions" }, note, h("div", { class: "row-actions" }, ack, resolve)), msg);
    return box;
  }

  /** Cross-command: send a drone to look at the alert's located objects (pilots), and what the last look found. */
  function lookSection(a) {
    const located = (a.objects || []).filter((o) => o.geo && isNum(o.geo.lat) && isNum(o.geo.lon));
    const box = h("div", { class: "look", id: "detail-look" });
    if (located.length && ["pilot", "admin"].includes(SE.session.role)) {
      const lat = located.reduce((s, o) => s + o.geo.lat, 0) / located.length;
      const lon = located.reduce((s, o) => s + o.geo.lon, 0) / located.length;
      const q = new URLSearchParams({ look: `${lat.toFixed(7)},${lon.toFixed(7)}`, alert: a.alert_id, label: `${a.rule}: ${located.map((o) => o.label).join(", ")}` });
      box.append(h("a", { class: "btn btn-small", id: "detail-send-drone", href: `/map?${q}` }, "Send a drone to look"));
    }
    const result = h("span", { class: "small", id: "detail-confirmation" });
    box.append(result);
    api("GET", `/api/alerts/${encodeURIComponent(a.alert_id)}/confirmation`)
      .then((c) => {
        const snap = c.event_id ? h("a", { href: `/api/events/${encodeURIComponent(c.event_id)}/snapshot`, target: "_blank", rel: "noopener" }, "the drone's picture") : null;
        result.replaceChildren(
          c.state === "confirmed" ? `Confirmed by ${c.vehicle} at ${SE.fmtTime(c.time)} (${c.label}, ${c.distance_m} m from the target) — ` : `Not seen by ${c.vehicle} (looked at ${SE.fmtTime(c.time)})`,
          snap || "",
        );
      })
      .catch(() => result.replaceChildren(located.length ? "" : "No located object: a drone cannot be sent."));
    return box;
  }

  function objectsSection(a) {
    const objs = a.objects || [];
    if (!objs.length) return [h("h3", null, "Objects"), h("p", { class: "muted small" }, a.state === "end" ? "None left when it cleared." : "None.")];
    return [
      h("h3", null, `Objects (${objs.length}${a.state === "end" ? ", when it cleared" : ""})`),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data msgs", id: "detail-objects" },
          h("thead", null, h("tr", null, h("th", null, "Track"), h("th", null, "Label"), h("th", { class: "num" }, "Score"), h("th", null, "Box (px)"), h("th", { class: "num" }, "In zone"), h("th", null, "Position"))),
          h(
            "tbody",
            null,
            objs.map((o) =>
              h(
                "tr",
                null,
                h("td", null, `#${o.track_id}`),
                h("td", null, h("span", { class: "chip-dot", style: { background: SE.labelColor(o.label) } }), o.label),
                h("td", { class: "num" }, SE.fmtScore(o.score)),
                h("td", { class: "nowrap" }, o.box ? `${Math.round(o.box.x1)},${Math.round(o.box.y1)} ${Math.round(o.box.x2 - o.box.x1)}×${Math.round(o.box.y2 - o.box.y1)}` : DASH),
                h("td", { class: "num" }, isNum(o.time_in_zone_s) ? SE.fmtDuration(o.time_in_zone_s) : DASH),
                h("td", { class: "small" }, SE.geoText(o) || DASH),
              ),
            ),
          ),
        ),
      ),
    ];
  }

  function historySection(a) {
    const msgs = (a.messages || []).slice().sort((x, y) => x.capture_time - y.capture_time || x.seq - y.seq);
    if (!msgs.length) return [];
    return [
      h("h3", null, `Messages (${msgs.length})`),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data msgs", id: "detail-messages" },
          h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "State"), h("th", null, "Captured"), h("th", { class: "num" }, "Received after"))),
          h(
            "tbody",
            null,
            msgs.map((m) =>
              h(
                "tr",
                null,
                h("td", null, m.id.endsWith(":clip") ? "clip" : m.seq),
                h("td", null, h("span", { class: `badge t-${m.state === "start" ? "new" : m.state}` }, m.id.endsWith(":clip") ? "clip" : m.state)),
                h("td", { class: "nowrap" }, SE.fmtClock(m.capture_time, true)),
                h("td", { class: "num" }, lag(m.received_time - m.capture_time)),
              ),
            ),
          ),
        ),
      ),
    ];
  }

  function deliveriesSection(a) {
    if (!supervisor) return [];
    const box = h("div", { id: "detail-deliveries" }, h("p", { class: "muted small" }, "Loading webhook deliveries…"));
    api("GET", `/api/webhooks/deliveries?alert_id=${encodeURIComponent(a.alert_id)}&limit=50`)
      .then((page) => {
        const items = page.items || [];
        box.replaceChildren(items.length ? alertDeliveries(items) : h("p", { class: "muted small" }, "No webhook deliveries for this alert."));
      })
      .catch((err) => box.replaceChildren(SE.errorBox(err)));
    return [h("h3", null, "Webhooks"), box];
  }

  function renderDetail(a) {
    const focused = document.activeElement && detail.contains(document.activeElement) ? document.activeElement.id : null;
    const noteText = $("supervise-note") ? $("supervise-note").value : "";
    const duration = (a.end_time || a.update_time) - a.start_time;
    const head = h(
      "div",
      { class: "detail-head" },
      h(
        "h2",
        { id: "detail-title" },
        h("span", { class: `badge ${SEVERITY_CLASS[a.severity] || ""}` }, a.severity),
        a.rule,
        h("span", { class: `badge ${a.state === "end" ? "t-end" : "t-new"}`, id: "detail-state" }, a.state === "end" ? "ended" : a.state === "start" ? "started" : "active"),
      ),
      closeButton(),
    );
    const sub = h(
      "p",
      { class: "sub" },
      `${a.node} / ${a.stream} · ${SE.humanize(a.rule_kind)}${whereText(a) ? " on " + whereText(a) : ""} · rules v${a.rules_version} · `,
      h("code", null, a.alert_id),
    );
    const timing = [
      h("h3", null, "Times"),
      kv([
        ["Started", SE.fmtTime(a.start_time, true), { id: "detail-start" }],
        ["Last change", SE.fmtTime(a.update_time, true)],
        ["Ended", a.end_time ? SE.fmtTime(a.end_time, true) : "still going"],
        ["Duration", SE.fmtDuration(duration)],
        ["At the station", `${lag(a.first_received - a.start_time)} after the start`],
        ["Count", String(a.count)],
        a.line_counts ? ["Crossings so far", `in ${a.line_counts.in || 0} · out ${a.line_counts.out || 0}`] : null,
      ]),
    ];
    const body = [head, sub, supervisionSection(a), lookSection(a), snapshotSection(a), ...clipSection(a), ...objectsSection(a), ...timing, ...historySection(a), ...deliveriesSection(a)];
    detail.replaceChildren(...body);
    detail.dataset.alertId = a.alert_id;
    detail.dataset.state = a.state;
    if ($("supervise-note")) $("supervise-note").value = noteText;
    if (focused && $(focused)) $(focused).focus();
  }

  // ---------------------------------------------------------------------------------- webhooks view
  const stateClass = { delivered: "ok", pending: "warn", failed: "bad" };
  const deliveryError = (d) => (d.last_error ? `${d.last_status ? `HTTP ${d.last_status}: ` : ""}${d.last_error}` : null);

  /** The webhook deliveries of one alert, compact enough for the detail column. */
  function alertDeliveries(items) {
    return h(
      "ul",
      { class: "deliveries-compact" },
      items.map((d) =>
        h(
          "li",
          { dataset: { deliveryId: String(d.id), state: d.state } },
          h("span", { class: `badge ${stateClass[d.state] || ""}` }, d.state),
          ` ${d.message_id.endsWith(":clip") ? "clip" : "#" + d.message_id.split(":").pop()} → `,
          h("span", { class: "mono small" }, d.url),
          ` · ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`,
          d.state === "pending" ? ` · next ${SE.fmtClock(d.next_attempt_time)}` : "",
          deliveryError(d) ? h("div", { class: "small wh-error" }, deliveryError(d)) : null,
        ),
      ),
    );
  }

  function deliveriesTable(items) {
    return h(
      "table",
      { class: "data msgs deliveries" },
      h(
        "thead",
        null,
        h("tr", null, h("th", null, "State"), h("th", null, "Alert message"), h("th", null, "Endpoint"), h("th", { class: "num" }, "Attempts"), h("th", null, "Last error"), h("th", null, "When"), supervisor ? h("th", null, "") : null),
      ),
      h(
        "tbody",
        null,
        items.map((d) =>
          h(
            "tr",
            { dataset: { deliveryId: String(d.id), state: d.state } },
            h("td", null, h("span", { class: `badge ${stateClass[d.state] || ""}` }, d.state)),
            h("td", null, h("a", { href: `/alerts?alert=${encodeURIComponent(d.alert_id)}` }, d.message_id)),
            h("td", { class: "small mono" }, d.url),
            h("td", { class: "num" }, String(d.attempts)),
            h("td", { class: "small wh-error" }, deliveryError(d) || DASH),
            h(
              "td",
              { class: "small nowrap" },
              d.state === "pending" ? `next try ${SE.fmtClock(d.next_attempt_time)}` : SE.fmtTime(d.finished_time || d.created_time),
            ),
            supervisor ? h("td", null, d.state === "failed" ? h("button", { type: "button", class: "btn-small", onclick: (e) => retry(d.id, e.currentTarget) }, "Retry") : null) : null,
          ),
        ),
      ),
    );
  }

  async function retry(id, button) {
    button.disabled = true;
    try {
      await api("POST", `/api/webhooks/deliveries/${id}/retry`, {});
      loadWebhooks();
    } catch (err) {
      $("wh-notice").replaceChildren(SE.errorBox(err));
      button.disabled = false;
    }
  }

  const wh = { cursor: null, seq: 0 };

  async function loadEndpoints() {
    const endpoints = await api("GET", "/api/webhooks");
    const failed = endpoints.reduce((n, e) => n + e.failed, 0);
    const badge = $("webhook-failed");
    badge.hidden = failed === 0;
    badge.textContent = `${failed} failed`;
    return endpoints;
  }

  async function loadWebhooks(more = false) {
    const seq = ++wh.seq;
    const table = $("wh-deliveries");
    try {
      const endpoints = await loadEndpoints();
      $("wh-none").hidden = endpoints.length > 0;
      $("wh-endpoints").replaceChildren(
        h("thead", null, h("tr", null, h("th", null, "URL"), h("th", null, "Sends"), h("th", { class: "num" }, "Pending"), h("th", { class: "num" }, "Delivered"), h("th", { class: "num" }, "Failed"), h("th", null, "Last error"))),
        h(
          "tbody",
          null,
          endpoints.map((e) =>
            h(
              "tr",
              { dataset: { endpoint: e.endpoint } },
              h("td", { class: "mono small" }, e.url),
              h("td", { class: "small" }, `${e.min_severity} and above · ${e.states.join(", ")}`),
              h("td", { class: "num" }, String(e.pending)),
              h("td", { class: "num" }, String(e.delivered)),
              h("td", { class: `num${e.failed ? " bad-text" : ""}` }, String(e.failed)),
              h("td", { class: "small wh-error" }, e.last_error || DASH),
            ),
          ),
        ),
      );
      const p = new URLSearchParams();
      if ($("wh-state").value) p.set("state", $("wh-state").value);
      const page = await SE.fetchPage("/api/webhooks/deliveries", p, 50, more && wh.cursor);
      if (seq !== wh.seq) return;
      $("wh-notice").replaceChildren();
      const rows = deliveriesTable(page.items);
      if (more) table.tBodies[0].append(...rows.tBodies[0].children);
      else table.replaceChildren(...rows.children);
      if (!page.items.length && !more) table.replaceChildren(h("tbody", null, h("tr", null, h("td", { class: "muted" }, "No deliveries in this state."))));
      wh.cursor = page.next_cursor;
      $("wh-older").hidden = !wh.cursor;
    } catch (err) {
      if (seq === wh.seq) $("wh-notice").replaceChildren(SE.errorBox(err));
    }
  }

  // ------------------------------------------------------------------------------------- audit view
  const audit = { cursor: null, seq: 0 };
  const ACTION_TEXT = {
    "rules.save": "saved rules",
    "rules.clear": "cleared rules",
    "alert.acknowledge": "acknowledged",
    "alert.resolve": "resolved",
    "webhook.retry": "retried a webhook delivery",
  };

  function auditTarget(e) {
    if (e.action.startsWith("alert.")) return h("a", { href: `/alerts?alert=${encodeURIComponent(e.target)}` }, e.target);
    if (e.action.startsWith("rules.")) {
      const [node, stream] = e.target.split("/");
      return h("a", { href: `/rules?node=${encodeURIComponent(node)}&stream=${encodeURIComponent(stream || "")}` }, e.target);
    }
    return h("span", { class: "mono" }, `delivery ${e.target}`);
  }

  function auditDetail(e) {
    const d = e.detail || {};
    const out = [];
    if (isNum(d.to_version)) out.push(h("div", null, `version ${isNum(d.from_version) && d.from_version > 0 ? d.from_version : "—"} → ${d.to_version}`));
    if (Array.isArray(d.changes) && d.changes.length) out.push(h("ul", { class: "changes" }, d.changes.map((c) => h("li", null, c))));
    if (d.note) out.push(h("div", null, "“", d.note, "”"));
    for (const [k, v] of Object.entries(d)) {
      if (!["from_version", "to_version", "changes", "note"].includes(k) && v !== null && v !== undefined) out.push(h("div", { class: "muted" }, `${SE.humanize(k)}: ${typeof v === "object" ? JSON.stringify(v) : v}`));
    }
    return out.length ? out : DASH;
  }

  async function loadAudit(more = false) {
    const seq = ++audit.seq;
    const p = new URLSearchParams();
    if ($("audit-action").value) p.set("action", $("audit-action").value);
    if ($("audit-actor").value.trim()) p.set("actor", $("audit-actor").value.trim());
    let page;
    try {
      page = await SE.fetchPage("/api/audit", p, 100, more && audit.cursor);
    } catch (err) {
      if (seq === audit.seq) $("audit-notice").replaceChildren(SE.errorBox(err));
      return;
    }
    if (seq !== audit.seq) return;
    $("audit-notice").replaceChildren();
    const table = $("audit");
    const rows = page.items.map((e) =>
      h(
        "tr",
        { dataset: { action: e.action, target: e.target } },
        h("td", { class: "nowrap" }, SE.fmtTime(e.time)),
        h("td", null, h("strong", null, e.actor)),
        h("td", null, ACTION_TEXT[e.action] || e.action),
        h("td", null, auditTarget(e)),
        h("td", { class: "small audit-detail" }, auditDetail(e)),
      ),
    );
    if (!more) {
      table.replaceChildren(
        h("thead", null, h("tr", null, h("th", null, "When"), h("th", null, "Who"), h("th", null, "Did"), h("th", null, "What"), h("th", null, "Change"))),
        h("tbody", null, rows.length ? rows : h("tr", null, h("td", { class: "muted" }, "Nothing recorded yet."))),
      );
    } else {
      table.tBodies[0].append(...rows);
    }
    audit.cursor = page.next_cursor;
    $("audit-older").hidden = !audit.cursor;
  }

  // ------------------------------------------------------------------------------------------ views
  const VIEWS = supervisor ? ["alerts", "webhooks", "audit"] : ["alerts"];
  let whTimer = 0;
  function showView() {
    const want = location.hash.slice(1);
    const view = VIEWS.includes(want) ? want : "alerts";
    for (const v of ["alerts", "webhooks", "audit"]) {
      $(`view-${v}`).hidden = v !== view;
      const tab = $(`tab-${v}`);
      tab.classList.toggle("active", v === view);
      tab.setAttribute("aria-selected", String(v === view));
    }
    $("filters-aside").hidden = view !== "alerts";
    layout.classList.toggle("single", view !== "alerts");
    if (view !== "alerts") closeDetail();
    clearInterval(whTimer);
    if (view === "webhooks") {
      loadWebhooks();
      whTimer = setInterval(() => loadWebhooks(), 10000);
    } else if (view === "audit") {
      loadAudit();
    }
  }

  if (supervisor) {
    $("tab-webhooks").hidden = false;
    $("tab-audit").hidden = false;
    loadEndpoints().catch(() => {});
    setInterval(() => loadEndpoints().catch(() => {}), 30000);
  }
  for (const tab of document.querySelectorAll("#tabs .tab")) {
    tab.addEventListener("click", () => {
      if (location.hash.slice(1) !== tab.dataset.view) location.hash = tab.dataset.view === "alerts" ? "" : tab.dataset.view;
    });
  }
  window.addEventListener("hashchange", showView);
  $("wh-refresh").addEventListener("click", () => loadWebhooks());
  $("wh-state").addEventListener("change", () => loadWebhooks());
  $("wh-older").addEventListener("click", () => loadWebhooks(true));
  $("audit-action").addEventListener("change", () => loadAudit());
  $("audit-actor").addEventListener("change", () => loadAudit());
  $("audit-older").addEventListener("click", () => loadAudit(true));

  // ------------------------------------------------------------------------------------------ wiring
  $("f-reset").addEventListener("click", () => {
    form.reset();
    fillStreams();
    load(true);
  });
  fNode.addEventListener("change", fillStreams);
  // Durations of ongoing alerts in the list.
  setInterval(() => {
    for (const [id, li] of st.rows) {
      const a = st.alerts.get(id);
      if (a && a.state !== "end") {
        const el = li.querySelector(".ev-meta div:last-child");
        if (el) el.textContent = `for ${SE.fmtDuration(SE.nowS() - a.start_time)}`;
      }
    }
  }, 5000);

  const wanted = applyUrl();
  showView();
  const hasPending = () => st.pending > 0;
  const hasSelection = () => Boolean(st.selected);
  await SE.startListPage({ load, loadChoices, select, hasPending, hasSelection, closeDetail }, wanted);
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
