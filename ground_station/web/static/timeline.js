/* Timeline: filtered, paged list of event messages (newest first), live-updated over the WebSocket,
   with the event detail (snapshot + box, timing, ground position, messages) beside it. */
"use strict";

(async function () {
  const { h, api, isNum, byId: $ } = SE;
  const PAGE = 50;
  await SE.init("timeline");

  const { form, fRange, fNode, fStream, list, empty, older, count, pending, liveToggle, detail, layout, notice } =
    SE.listPage("events");
  const fStart = $("f-start");
  const fEnd = $("f-end");
  const fLabel = $("f-label");
  const fMin = $("f-min-score");
  const fType = $("f-type");

  const st = { ids: new Set(), cursor: null, loadSeq: 0, selected: null, pending: 0, filters: null, streams: new Map() };

  // --------------------------------------------------------------------------- filters ⇄ form ⇄ URL
  const pad = (n) => String(n).padStart(2, "0");
  const toLocal = (t) => {
    const d = new Date(t * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const parseLocal = (v) => {
    const t = v ? new Date(v).getTime() : NaN;
    return Number.isFinite(t) ? t / 1000 : null;
  };
  const minScore = (f) => (f.min_score !== "" && Number.isFinite(Number(f.min_score)) ? Number(f.min_score) : null);

  function readForm() {
    const f = {
      range: fRange.value,
      node: fNode.value,
      stream: fStream.value,
      label: fLabel.value.trim(),
      min_score: fMin.value.trim(),
      type: fType.value,
      start: null,
      end: null,
    };
    if (f.range === "custom") {
      f.start = parseLocal(fStart.value);
      f.end = parseLocal(fEnd.value);
    } else if (f.range) {
      f.start = SE.nowS() - Number(f.range);
    }
    return f;
  }

  function apiQuery(f) {
    const p = new URLSearchParams();
    if (isNum(f.start)) p.set("start", f.start.toFixed(3));
    if (isNum(f.end)) p.set("end", f.end.toFixed(3));
    for (const k of ["node", "stream", "label", "type"]) if (f[k]) p.set(k, f[k]);
    if (minScore(f) !== null) p.set("min_score", String(minScore(f)));
    return p;
  }

  function syncUrl() {
    const f = st.filters || readForm();
    const p = new URLSearchParams();
    if (f.range) p.set("range", f.range);
    if (f.range === "custom") {
      if (isNum(f.start)) p.set("start", String(Math.round(f.start)));
      if (isNum(f.end)) p.set("end", String(Math.round(f.end)));
    }
    for (const k of ["node", "stream", "label", "min_score", "type"]) if (f[k]) p.set(k, f[k]);
    if (st.selected) p.set("event", st.selected);
    const qs = p.toString();
    history.replaceState(null, "", qs ? `${location.pathname}?${qs}` : location.pathname);
  }

  function applyUrl() {
    const p = new URLSearchParams(location.search);
    const range = p.get("range") || "";
    fRange.value = [...fRange.options].some((o) => o.value === range) ? range : "";
    if (fRange.value === "custom") {
      const s = Number(p.get("start"));
      const e = Number(p.get("end"));
      fStart.value = p.get("start") && Number.isFinite(s) ? toLocal(s) : "";
      fEnd.value = p.get("end") && Number.isFinite(e) ? toLocal(e) : "";
    }
    $("custom-range").hidden = fRange.value !== "custom";
    ensureOption(fNode, p.get("node") || "");
    ensureOption(fStream, p.get("stream") || "");
    fLabel.value = p.get("label") || "";
    fMin.value = p.get("min_score") || "";
    fType.value = ["new", "update", "end"].includes(p.get("type")) ? p.get("type") : "";
    return p.get("event");
  }

  const ensureOption = SE.ensureOption;
  const fillStreams = () => SE.fillStreamChoices(fStream, st.streams, fNode.value);

  async function loadChoices() {
    try {
      const nodes = await api("GET", "/api/nodes");
      for (const n of nodes || []) st.streams.set(n.node, (n.streams || []).map((s) => s.stream));
      const cur = fNode.value;
      fNode.replaceChildren(h("option", { value: "" }, "All nodes"), [...st.streams.keys()].sort().map((v) => h("option", { value: v }, v)));
      ensureOption(fNode, cur);
      fillStreams();
    } catch {
      /* the filters still work without the choices */
    }
    try {
      const stats = await api("GET", "/api/stats");
      $("labels").replaceChildren(...(stats.by_label || []).map((b) => h("option", { value: b.key })));
    } catch {
      /* no label suggestions */
    }
  }

  // ---------------------------------------------------------------------------------------- rows
  const snapUrl = (eventId) => `/api/events/${encodeURIComponent(eventId)}/snapshot`;

  function thumbnail(ev) {
    const none = () => h("div", { class: "thumb-none" }, "no image");
    if (ev.has_snapshot === false) return none();
    const img = h("img", { class: "thumb", src: snapUrl(ev.event_id), alt: "", loading: "lazy", decoding: "async" });
    let retried = ev.has_snapshot === true; // live messages do not say: the snapshot may be stored a moment later
    img.addEventListener("error", () => {
      if (!retried) {
        retried = true;
        setTimeout(() => (img.src = `${snapUrl(ev.event_id)}?retry=1`), 2000);
      } else {
        img.replaceWith(none());
      }
    });
    return img;
  }

  function row(ev, fresh) {
    const geo = SE.geoText(ev);
    const typeText = ev.type === "end" && ev.end_reason ? `end · ${SE.humanize(ev.end_reason)}` : ev.type;
    const main = h(
      "div",
      { class: "ev-main" },
      h(
        "div",
        { class: "ev-title" },
        h("span", { class: "chip-dot", style: { background: SE.labelColor(ev.label) } }),
        h("span", { class: "ev-label" }, ev.label),
        h("span", { class: "ev-score", title: `score ${SE.fmtScore(ev.score)}, best ${SE.fmtScore(ev.top_score)}` }, SE.fmtScore(ev.score)),
        h("span", { class: `badge t-${ev.type}` }, typeText),
      ),
      h("div", { class: "ev-sub" }, `${ev.node} / ${ev.stream} · track #${ev.track_id}`),
      geo
        ? h("div", { class: "ev-geo" }, SE.pin(), geo)
        : ev.geo_status && ev.geo_status !== "ok"
          ? h("div", { class: "ev-sub" }, `no position: ${SE.geoStatusText(ev.geo_status)}`)
          : null,
    );
    const meta = h(
      "div",
      { class: "ev-meta" },
      h("div", { class: "clock" }, SE.fmtClock(ev.capture_time)),
      h("div", null, SE.fmtDate(ev.capture_time)),
      h("div", { title: "edge latency: capture → publish" }, SE.fmtMs(ev.publish_time - ev.capture_time)),
    );
    const cls = ["event", fresh ? "fresh" : "", ev.event_id === st.selected ? "selected" : ""].filter(Boolean).join(" ");
    return h(
      "li",
      { class: cls, dataset: { id: ev.id, eventId: ev.event_id, type: ev.type } },
      h("button", { type: "button", class: "event-btn", onclick: () => select(ev.event_id) }, thumbnail(ev), main, meta),
    );
  }

  function addRow(ev, where, fresh = false) {
    if (!ev || !ev.id || st.ids.has(ev.id)) return false;
    st.ids.add(ev.id);
    const li = row(ev, fresh);
    if (where === "top") list.prepend(li);
    else list.append(li);
    return true;
  }

  function updateCount() {
    const n = list.children.length;
    count.textContent = `${n} shown${st.cursor ? " · more below" : ""}`;
    empty.hidden = n > 0;
  }

  function updatePending() {
    pending.hidden = st.pending === 0;
    pending.textContent = `${st.pending} new — show`;
  }

  // ---------------------------------------------------------------------------------------- loading
  async function load(reset) {
    const seq = ++st.loadSeq;
    if (reset) {
      st.filters = readForm();
      syncUrl();
      st.cursor = null;
      count.textContent = "loading…";
    }
    older.disabled = true;
    let r;
    try {
      r = await SE.fetchPage("/api/events", apiQuery(st.filters), PAGE, reset ? null : st.cursor);
    } catch (err) {
      if (seq === st.loadSeq) {
        notice.replaceChildren(SE.errorBox(err));
        older.disabled = false;
        count.textContent = "";
      }
      return;
    }
    if (seq !== st.loadSeq) return;
    notice.replaceChildren();
    if (reset) {
      list.replaceChildren();
      st.ids.clear();
      st.pending = 0;
      updatePending();
    }
    for (const ev of r.items || []) addRow(ev, "bottom");
    st.cursor = r.next_cursor || null;
    older.hidden = !st.cursor;
    older.disabled = false;
    updateCount();
  }

  /** After a WebSocket reconnect: add what arrived meanwhile without losing the place in the list. */
  async function catchUp() {
    if (!st.filters) return;
    try {
      const r = await SE.fetchPage("/api/events", apiQuery(st.filters), PAGE);
      const fresh = (r.items || []).filter((ev) => !st.ids.has(ev.id));
      for (const ev of fresh.reverse()) addRow(ev, "top", true);
      updateCount();
    } catch {
      /* the next reconnect tries again */
    }
  }

  function matches(ev) {
    const f = st.filters;
    if (!f) return false;
    if (f.node && ev.node !== f.node) return false;
    if (f.stream && ev.stream !== f.stream) return false;
    if (f.type && ev.type !== f.type) return false;
    if (f.label && String(ev.label).toLowerCase() !== f.label.toLowerCase()) return false;
    if (minScore(f) !== null && !(ev.score >= minScore(f))) return false;
    if (isNum(f.end) && ev.capture_time > f.end) return false;
    if (f.range === "custom" && isNum(f.start) && ev.capture_time < f.start) return false;
    return true;
  }

  // ----------------------------------------------------------------------------------------- detail
  let refreshTimer = null;

  async function select(eventId) {
    st.selected = eventId;
    for (const li of list.querySelectorAll(".event")) li.classList.toggle("selected", li.dataset.eventId === eventId);
    detail.hidden = false;
    layout.classList.add("with-detail");
    syncUrl();
    await SE.renderEventDetail(detail, eventId, { onClose: closeDetail });
  }

  function closeDetail() {
    st.selected = null;
    detail.hidden = true;
    detail.replaceChildren();
    layout.classList.remove("with-detail");
    for (const li of list.querySelectorAll(".event.selected")) li.classList.remove("selected");
    syncUrl();
  }

  // ------------------------------------------------------------------------------------------ wiring
  let labelTimer = null;
  fRange.addEventListener("change", () => {
    const custom = fRange.value === "custom";
    $("custom-range").hidden = !custom;
    if (custom && !fStart.value) fStart.value = toLocal(SE.nowS() - 3600);
    load(true);
  });
  fNode.addEventListener("change", () => {
    fillStreams();
    load(true);
  });
  for (const el of [fStream, fType, fStart, fEnd, fMin]) el.addEventListener("change", () => load(true));
  fLabel.addEventListener("input", () => {
    clearTimeout(labelTimer);
    labelTimer = setTimeout(() => load(true), 400);
  });
  $("f-reset").addEventListener("click", () => {
    form.reset();
    $("custom-range").hidden = true;
    fillStreams();
    load(true);
  });

  SE.live.on("event", (ev) => {
    if (!ev || !ev.id) return;
    if (st.selected && ev.event_id === st.selected) {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => SE.renderEventDetail(detail, st.selected, { onClose: closeDetail }), 500);
    }
    if (st.ids.has(ev.id) || !matches(ev)) return;
    if (!liveToggle.checked) {
      st.pending += 1;
      updatePending();
      return;
    }
    addRow(ev, "top", true);
    updateCount();
  });
  SE.live.onOpen((reconnect) => {
    if (reconnect) catchUp();
  });

  const wanted = applyUrl();
  const hasPending = () => st.pending > 0;
  const hasSelection = () => Boolean(st.selected);
  await SE.startListPage({ load, loadChoices, select, hasPending, hasSelection, closeDetail }, wanted);
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
