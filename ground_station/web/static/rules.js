/* Zones & rules: a supervisor picks a stream, draws its zones and lines on a current picture of it (a still
   of the live video, or its latest snapshot; fractions of the frame) or on the map (lat/lon geofences), sets
   each zone's filter and the rules that watch them, and saves. The station stores the version (n+1) and
   pushes it to the edge node, which reports the version it runs: the bar at the top says whether the edge
   applied it ("applied on edge: vN") or still runs another, and why the edge refused one. A refused save
   names the field; nothing is stored then.

   Field titles, limits, defaults and descriptions come from the API's own schema (RuleSet in
   /api/openapi.json), so this page and the validation never disagree. Viewers and pilots see the rules
   read-only. */
"use strict";

(async function () {
  const { h, api, isNum, byId: $ } = SE;
  const session = await SE.init("rules");
  const canEdit = ["admin", "supervisor"].includes(session.role);

  const streamSelect = $("stream-select");
  const syncEl = $("sync");
  const notice = $("notice");
  const hint = $("hint");
  const canvas = $("frame");
  const frameNote = $("frame-note");
  const shapesBox = $("shapes");
  const rulesBox = $("rules");
  const settingsBox = $("settings");
  const saveBtn = $("save");
  const saveError = $("save-error");

  const KINDS_ON_LINES = ["cross"];
  const KIND_HELP = {
    enter: "an object enters the zone (confirmed in after the zone's minimum time and frames)",
    exit: "an object that was in the zone leaves it (after the inertia)",
    cross: "an object crosses the line in the direction set",
    loiter: "an object stays in the zone longer than the duration",
    crowd: "at least the minimum count of objects are in the zone for the duration",
    inside: "an object is in the zone (a geofence: the alert lasts while anyone is in it)",
  };

  const st = {
    streams: [], // [{node, stream, …StreamRulesOut}]
    key: null, // "node/stream"
    server: null, // StreamRulesOut of the selected stream
    draft: null, // the rules being edited (RuleSet without version; shapes carry a `uid`)
    saved: "", // JSON of the draft as loaded: dirty = differs
    space: "image",
    open: new Set(), // uids of the cards shown open
    video: [], // /api/video/streams
    labels: [],
    telemetry: null,
    refusalShown: null, // the edge's refusal last pointed at in the side panel
  };
  let uidSeq = 0;
  const uid = () => `s${++uidSeq}`;

  // ---------------------------------------------------------------------------------- the schema
  let schemas = {};
  try {
    schemas = (await api("GET", "/api/openapi.json")).components.schemas;
  } catch (err) {
    notice.replaceChildren(SE.errorBox(err));
  }
  /** A field's title, description, default, limits and type, from the schema of `model`. */
  function meta(model, name) {
    const p = ((schemas[model] || {}).properties || {})[name] || {};
    const base = p.anyOf ? p.anyOf.find((x) => x.type !== "null") || {} : p;
    return { title: p.title || SE.humanize(name), description: p.description || "", default: p.default, min: base.minimum, max: base.maximum, type: base.type, nullable: Boolean(p.anyOf) };
  }
  function defaults(model) {
    const out = {};
    for (const [k, p] of Object.entries((schemas[model] || {}).properties || {})) if ("default" in p) out[k] = structuredClone(p.default);
    return out;
  }
  const enumOf = (name, fallback) => ((schemas[name] || {}).enum || fallback);
  const KINDS = enumOf("RuleKind", ["enter", "exit", "cross", "loiter", "crowd", "inside"]);
  const DIRECTIONS = enumOf("Direction", ["in", "out", "any"]);
  const SEVERITIES = enumOf("Severity", ["info", "warning", "critical"]);

  function emptyRules() {
    return { zones: [], lines: [], rules: [], clip: defaults("ClipSettings"), counts_interval_s: defaults("RuleSet").counts_interval_s ?? 10 };
  }
  const newFilter = () => ({ labels: null, min_size_m: null, ...defaults("ObjectFilter") });

  /** The draft as the API takes it (without the page's uids). */
  function payload() {
    const d = st.draft;
    const shape = ({ uid: _u, ...rest }) => rest;
    return { zones: d.zones.map(shape), lines: d.lines.map(shape), rules: d.rules.map(shape), clip: d.clip, counts_interval_s: d.counts_interval_s };
  }
  const dirty = () => st.draft !== null && JSON.stringify(payload()) !== st.saved;

  // ---------------------------------------------------------------------------------- the streams
  async function loadStreams() {
    const [rules, video, nodes] = await Promise.all([
      api("GET", "/api/rules"),
      api("GET", "/api/video/streams").catch(() => []),
      api("GET", "/api/nodes").catch(() => []),
    ]);
    const known = new Map(rules.map((r) => [`${r.node}/${r.stream}`, r]));
    for (const n of nodes) for (const s of n.streams || []) if (!known.has(`${n.node}/${s.stream}`)) known.set(`${n.node}/${s.stream}`, { node: n.node, stream: s.stream, version: null, edge: null, in_sync: true });
    for (const v of video) if (!known.has(`${v.node}/${v.stream}`)) known.set(`${v.node}/${v.stream}`, { node: v.node, stream: v.stream, version: null, edge: null, in_sync: true });
    st.streams = [...known.values()].sort((a, b) => `${a.node}/${a.stream}`.localeCompare(`${b.node}/${b.stream}`));
    st.video = video;
    const cur = st.key;
    streamSelect.replaceChildren(
      ...(st.streams.length ? [] : [h("option", { value: "" }, "No streams yet")]),
      ...st.streams.map((s) => h("option", { value: `${s.node}/${s.stream}` }, `${s.stream} · ${s.node}${s.version ? ` · v${s.version}` : ""}`)),
    );
    if (cur) streamSelect.value = cur;
  }

  streamSelect.addEventListener("change", () => {
    if (dirty() && !confirm("Discard the unsaved changes to this stream's rules?")) {
      streamSelect.value = st.key;
      return;
    }
    openStream(streamSelect.value);
  });

  async function openStream(key) {
    if (!key) return;
    st.key = key;
    if (![...streamSelect.options].some((o) => o.value === key)) streamSelect.append(h("option", { value: key }, key.replace("/", " · ")));
    streamSelect.value = key;
    const [node, stream] = key.split("/");
    history.replaceState(null, "", `${location.pathname}?node=${encodeURIComponent(node)}&stream=${encodeURIComponent(stream)}${location.hash}`);
    saveError.replaceChildren();
    try {
      st.server = await api("GET", `/api/rules/${encodeURIComponent(node)}/${encodeURIComponent(stream)}`);
    } catch (err) {
      notice.replaceChildren(SE.errorBox(err));
      return;
    }
    notice.replaceChildren();
    startDraft(st.server.rules);
    renderSync();
    const hasGeo = st.draft.zones.some((z) => z.space === "geo") || st.draft.lines.some((l) => l.space === "geo");
    const hasImage = st.draft.zones.some((z) => z.space !== "geo") || st.draft.lines.some((l) => l.space !== "geo");
    setSpace(hasGeo && !hasImage ? "geo" : "image");
    loadFrame(null);
    loadGeoContext();
    loadCounts();
  }

  function startDraft(rules) {
    const d = rules ? structuredClone(rules) : emptyRules();
    delete d.version;
    for (const z of d.zones) z.uid = uid();
    for (const l of d.lines) l.uid = uid();
    for (const r of d.rules) r.uid = uid();
    st.draft = d;
    st.saved = JSON.stringify(payload());
    st.open.clear();
    renderSide();
    syncEditors();
  }

  // ------------------------------------------------------------------------------- sync with the edge
  /** What the station has saved and what the edge runs, in words (and as data-* for tests). */
  function renderSync() {
    const s = st.server;
    if (!s) return;
    const e = s.edge;
    const running = e ? e.rules_version : undefined;
    const runs = (v) => (v === null || v === undefined ? "no rules" : v === 0 ? "its YAML rules (v0)" : `v${v}`);
    const parts = [];
    let tone = "info";
    if (s.version === null) {
      parts.push(h("span", null, "Nothing saved at the station for this stream."));
    } else {
      parts.push(h("span", { id: "saved-version" }, s.rules ? `Saved v${s.version}` : `v${s.version} cleared the station's rules`, s.author ? ` by ${s.author}` : "", s.saved_time ? `, ${SE.fmtTime(s.saved_time)}` : ""));
      if (!s.published) parts.push(h("span", { class: "warn-text" }, "not on the broker yet (sent when the station reconnects)"));
    }
    if (!e) {
      parts.push(h("span", { id: "edge-version", class: "muted" }, "no status from this stream yet"));
    } else if (e.rules_error && !(s.in_sync && s.version !== null)) {
      tone = "bad";
      parts.push(h("span", { id: "edge-version" }, `edge refused the last rules: ${e.rules_error} — it still runs ${runs(running)}`));
    } else if (s.version === null) {
      parts.push(h("span", { id: "edge-version" }, `the edge runs ${runs(running)}`));
      if (running === 0) parts.push(h("span", null, "(not shown here; rules saved here replace them, Clear returns to them)"));
    } else if (s.in_sync) {
      tone = "ok";
      parts.push(h("span", { id: "edge-version" }, s.rules ? `applied on edge: v${running}` : `the edge runs ${runs(running)} again`));
    } else {
      tone = "warn";
      parts.push(h("span", { id: "edge-version" }, `edge still runs ${runs(running)}`));
    }
    syncEl.className = `sync sync-${tone}`;
    syncEl.dataset.savedVersion = s.version === null ? "" : String(s.version);
    syncEl.dataset.edgeVersion = running === null || running === undefined ? "" : String(running);
    syncEl.dataset.inSync = String(Boolean(s.in_sync && s.version !== null));
    syncEl.replaceChildren(...parts.flatMap((p, i) => (i ? [h("span", { class: "sep" }, "·"), p] : [p])));
    // The edge refused what is saved and shown here: point at the field it names.
    const refused = tone === "bad" && !dirty() && s.version !== null ? `${s.version}:${e.rules_error}` : null;
    if (refused && refused !== st.refusalShown) markInvalid([{ where: pathOf(e.rules_error) }]);
    st.refusalShown = refused;
  }

  /** The station's in_sync, recomputed when a status arrives live. */
  function inSync(s) {
    if (s.version === null) return true;
    if (!s.edge) return false;
    return s.rules === null ? [0, null].includes(s.edge.rules_version) : s.edge.rules_version === s.version;
  }

  SE.live.on("status", (m) => {
    const s = st.server;
    if (!s || m.node !== s.node || m.stream !== s.stream) return;
    s.edge = { rules_version: m.rules_version ?? null, rules_error: m.rules_error ?? null, status_time: m.time };
    s.in_sync = inSync(s);
    renderSync();
  });
  // The status may arrive while the socket reconnects, or come from a node that publishes rarely: ask too.
  setInterval(async () => {
    const s = st.server;
    if (!s || document.hidden) return;
    try {
      const fresh = await api("GET", `/api/rules/${encodeURIComponent(s.node)}/${encodeURIComponent(s.stream)}`);
      if (st.server && st.server.node === fresh.node && st.server.stream === fresh.stream) {
        Object.assign(st.server, { edge: fresh.edge, in_sync: fresh.in_sync, published: fresh.published });
        if (fresh.version !== st.server.version) {
          st.server = fresh;
          if (!dirty()) startDraft(fresh.rules);
          else notice.replaceChildren(h("div", { class: "notice notice-warn" }, `Someone saved v${fresh.version} of these rules meanwhile; saving yours will be refused — revert to see theirs.`));
        }
        renderSync();
      }
    } catch {
      /* the next poll */
    }
  }, 5000);

  // ------------------------------------------------------------------------------------ the editors
  const colorOf = (item) => {
    const all = [...st.draft.zones, ...st.draft.lines];
    return SE.SHAPE_COLORS[Math.max(0, all.indexOf(item)) % SE.SHAPE_COLORS.length];
  };
  const shapesIn = (space) => [
    ...st.draft.zones.filter((z) => (z.space || "image") === space).map((z) => ({ id: z.uid, type: "zone", name: z.name, points: z.points, color: colorOf(z) })),
    ...st.draft.lines.filter((l) => (l.space || "image") === space).map((l) => ({ id: l.uid, type: "line", name: l.name, points: l.points, color: colorOf(l) })),
  ];
  const byUid = (id) => st.draft.zones.find((z) => z.uid === id) || st.draft.lines.find((l) => l.uid === id);

  const round = (v, digits) => Number(v.toFixed(digits));
  const clamp01 = (v) => Math.min(1, Math.max(0, v));
  const overlay = $("overlay");
  const imageEditor = new SE.ShapeEditor(
    overlay,
    {
      backgroundClicks: true,
      toScreen: ([x, y]) => [x * overlay.clientWidth, y * overlay.clientHeight],
      fromScreen: ([px, py]) => [round(clamp01(px / overlay.clientWidth), 4), round(clamp01(py / overlay.clientHeight), 4)],
    },
    editorCallbacks("image"),
  );
  new ResizeObserver(() => imageEditor.render()).observe(overlay);

  let geo = null; // {map, editor, layers} once the map view is first shown

  function editorCallbacks(space) {
    return {
      onCreate: (type, points) => createShape(space, type, points),
      onChange: (shapes) => {
        for (const sh of shapes) {
          const item = byUid(sh.id);
          if (item) item.points = sh.points;
        }
        renderPointsText();
        updateSaveState();
      },
      onSelect: (id) => {
        if (id) {
          st.open.add(id);
          renderSide();
          const card = shapesBox.querySelector(`[data-uid="${id}"]`);
          if (card) card.scrollIntoView({ block: "nearest" });
        }
        highlightCard(id);
      },
      onToolDone: () => setTool("select"),
    };
  }

  function syncEditors() {
    imageEditor.setShapes(shapesIn("image"));
    if (geo) geo.editor.setShapes(shapesIn("geo"));
  }

  const activeEditor = () => (st.space === "geo" && geo ? geo.editor : imageEditor);

  function uniqueName(base) {
    const taken = new Set([...st.draft.zones, ...st.draft.lines].map((x) => x.name));
    for (let i = 1; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }
  function uniqueRuleName(base) {
    const taken = new Set(st.draft.rules.map((r) => r.name));
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  /** A shape just drawn: add it, with a rule watching it (enter for a picture zone, inside for a geofence,
      cross for a line) that the user may change or delete. */
  function createShape(space, type, points) {
    const name = uniqueName(space === "geo" ? (type === "zone" ? "geofence" : "geoline") : type);
    const item = { uid: uid(), name, space, points, filter: newFilter() };
    if (type === "zone") st.draft.zones.push(item);
    else st.draft.lines.push(item);
    const kind = type === "line" ? "cross" : space === "geo" ? "inside" : "enter";
    const rule = { uid: uid(), ...defaults("Rule"), name: uniqueRuleName(`${name}-${kind}`), kind, zone: type === "zone" ? name : null, line: type === "line" ? name : null };
    st.draft.rules.push(rule);
    st.open.add(item.uid);
    st.open.add(rule.uid);
    setTool("select");
    renderSide();
    syncEditors();
    activeEditor().select(item.uid);
    highlightCard(item.uid);
    updateSaveState();
  }

  function deleteShape(item) {
    const isZone = st.draft.zones.includes(item);
    const watching = st.draft.rules.filter((r) => (isZone ? r.zone : r.line) === item.name);
    if (watching.length && !confirm(`Delete ${item.name} and the ${watching.length} rule${watching.length > 1 ? "s" : ""} watching it (${watching.map((r) => r.name).join(", ")})?`)) return;
    if (isZone) st.draft.zones.splice(st.draft.zones.indexOf(item), 1);
    else st.draft.lines.splice(st.draft.lines.indexOf(item), 1);
    st.draft.rules = st.draft.rules.filter((r) => !watching.includes(r));
    renderSide();
    syncEditors();
    updateSaveState();
  }

  // ------------------------------------------------------------------------------------------ tools
  function setTool(tool) {
    for (const t of ["select", "zone", "line"]) $(`tool-${t}`).classList.toggle("on", t === tool);
    const editor = activeEditor();
    if (editor.tool !== tool) editor.setTool(tool);
    $("finish").hidden = tool !== "zone";
    $("cancel").hidden = tool === "select";
    const where = st.space === "geo" ? "map" : "picture";
    hint.textContent = {
      select: canEdit ? `Click a zone or line to select it; drag its points or the whole shape; drag a small mid-edge dot to add a point; right-click a point to delete it.` : "",
      zone: `Click on the ${where} to add the zone's corners; click the first point, double-click or press Enter to close it; Backspace removes the last point, Esc cancels.`,
      line: `Click on the ${where} at a, then at b. Crossing from the right of a→b to its left counts as "in".`,
    }[tool];
  }
  for (const t of ["select", "zone", "line"]) $(`tool-${t}`).addEventListener("click", () => setTool(t));
  $("finish").addEventListener("click", () => activeEditor().finish());
  $("cancel").addEventListener("click", () => {
    activeEditor().setTool("select");
    setTool("select");
  });
  document.addEventListener("keydown", (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
    if (typing) return;
    const editor = activeEditor();
    if (e.key === "Escape" && editor.tool !== "select") editor.cancel();
    else if (e.key === "Enter" && editor.tool === "zone") editor.finish();
    else if (e.key === "Backspace" && editor.tool !== "select") {
      e.preventDefault();
      editor.undoPoint();
    } else if (e.key === "Delete" && canEdit && editor.tool === "select" && editor.selected && byUid(editor.selected)) {
      deleteShape(byUid(editor.selected));
    }
  });

  function setSpace(space) {
    st.space = space;
    $("space-image").classList.toggle("on", space === "image");
    $("space-geo").classList.toggle("on", space === "geo");
    $("space-image").setAttribute("aria-selected", String(space === "image"));
    $("space-geo").setAttribute("aria-selected", String(space === "geo"));
    $("image-view").hidden = space !== "image";
    $("geo-view").hidden = space !== "geo";
    $("frame-source").hidden = space !== "image";
    if (space === "geo") ensureGeo();
    imageEditor.setTool("select");
    if (geo) geo.editor.setTool("select");
    setTool("select");
  }
  $("space-image").addEventListener("click", () => setSpace("image"));
  $("space-geo").addEventListener("click", () => setSpace("geo"));

  // ------------------------------------------------------------------------------ the picture (image)
  const ctx = canvas.getContext("2d");
  let iceServers = null;

  function placeholder(text) {
    const w = canvas.width;
    const hgt = canvas.height;
    ctx.fillStyle = "#141b24";
    ctx.fillRect(0, 0, w, hgt);
    ctx.strokeStyle = "#26313e";
    ctx.lineWidth = 1;
    for (let i = 1; i < 10; i++) {
      ctx.beginPath();
      ctx.moveTo((w * i) / 10, 0);
      ctx.lineTo((w * i) / 10, hgt);
      ctx.moveTo(0, (hgt * i) / 10);
      ctx.lineTo(w, (hgt * i) / 10);
      ctx.stroke();
    }
    frameNote.textContent = text;
    frameNote.hidden = false;
    canvas.dataset.source = "none";
    fitCanvas();
  }

  /** The picture as large as the column and the window allow, its aspect kept (the overlay follows it). */
  function fitCanvas() {
    const wrap = $("image-view");
    const room = wrap.parentElement.clientWidth;
    const maxH = Math.max(240, window.innerHeight - wrap.getBoundingClientRect().top - 16);
    const k = Math.min(room / canvas.width, maxH / canvas.height);
    canvas.style.width = `${Math.floor(canvas.width * k)}px`;
    canvas.style.height = `${Math.floor(canvas.height * k)}px`;
    imageEditor.render();
  }
  new ResizeObserver(fitCanvas).observe($("image-view").parentElement);
  window.addEventListener("resize", fitCanvas);

  function drawPicture(source, what, label) {
    const w = source.videoWidth || source.naturalWidth;
    const hgt = source.videoHeight || source.naturalHeight;
    canvas.width = w;
    canvas.height = hgt;
    ctx.drawImage(source, 0, 0, w, hgt);
    canvas.dataset.source = what;
    frameNote.textContent = label;
    frameNote.hidden = false;
    fitCanvas();
  }

  async function latestSnapshot(node, stream) {
    const page = await api("GET", `/api/events?node=${encodeURIComponent(node)}&stream=${encodeURIComponent(stream)}&type=new&limit=100`);
    const ev = (page.items || []).find((e) => e.has_snapshot);
    if (!ev) throw new Error("this stream has no snapshot yet");
    const img = new Image();
    img.src = `/api/events/${encodeURIComponent(ev.event_id)}/snapshot`;
    await img.decode();
    return { img, time: ev.capture_time };
  }

  /** One frame of the stream's live video from this station's WHEP: connect, wait for a picture, hang up. */
  async function liveStill(whep) {
    if (iceServers === null) iceServers = await api("GET", "/api/video/ice-servers").catch(() => []);
    const pc = new RTCPeerConnection({ iceServers });
    // In the page (invisible): a detached <video> may never present a frame.
    const video = h("video", { class: "still-source", muted: true, playsinline: true, autoplay: true });
    video.muted = true;
    document.body.append(video);
    let resource = null;
    try {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.ontrack = (e) => (video.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]));
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, 2000);
      });
      const res = await fetch(whep, { method: "POST", headers: { "Content-Type": "application/sdp", "X-CSRF-Token": session.csrf_token }, credentials: "same-origin", body: pc.localDescription.sdp });
      if (!res.ok) throw new Error(`the live video answered ${res.status}`);
      resource = new URL(res.headers.get("Location"), location.href).href;
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no picture from the live video within 15 s")), 15000);
        const frames = { n: 0 };
        const onFrame = () => {
          // The second frame: the first may be the decoder's grey start on some browsers.
          if (++frames.n >= 2) {
            clearTimeout(timer);
            resolve();
          } else video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
        video.play().catch(() => {});
      });
      return video;
    } finally {
      if (resource) fetch(resource, { method: "DELETE", headers: { "X-CSRF-Token": session.csrf_token }, credentials: "same-origin" }).catch(() => {});
      setTimeout(() => {
        pc.close();
        video.remove();
      }, 0); // after the frame was drawn
    }
  }

  let frameSeq = 0;
  /** Load the picture to draw on: `source` "live", "snapshot", or null (live when the stream's video reaches
      this station, else the snapshot). */
  async function loadFrame(source) {
    const seq = ++frameSeq;
    const s = st.server;
    if (!s) return;
    const video = st.video.find((v) => v.node === s.node && v.stream === s.stream && v.state === "live");
    const want = source || (video ? "live" : "snapshot");
    $("frame-live").disabled = !video;
    $("frame-live").classList.toggle("on", want === "live");
    $("frame-snapshot").classList.toggle("on", want === "snapshot");
    placeholder(want === "live" ? "Taking a still of the live video…" : "Loading the latest snapshot…");
    try {
      if (want === "live") {
        if (!video) throw new Error("this stream's live video does not reach the station");
        const v = await liveStill(video.whep);
        if (seq === frameSeq) drawPicture(v, "live", `Live still, ${SE.fmtClock(SE.nowS())} · ${v.videoWidth}×${v.videoHeight}`);
      } else {
        const { img, time } = await latestSnapshot(s.node, s.stream);
        if (seq === frameSeq) drawPicture(img, "snapshot", `Snapshot of ${SE.fmtTime(time)} · ${img.naturalWidth}×${img.naturalHeight}`);
      }
    } catch (err) {
      if (seq !== frameSeq) return;
      if (!source && want === "live") return loadFrame("snapshot");
      placeholder(`No picture: ${err.message}. Zones can still be drawn (fractions of the frame).`);
    }
  }
  $("frame-live").addEventListener("click", () => loadFrame("live"));
  $("frame-snapshot").addEventListener("click", () => loadFrame("snapshot"));

  // ----------------------------------------------------------------------------------- the map (geo)
  /** The map as tall as the window allows below the toolbar. */
  function fitGeo() {
    const wrap = $("geo-view");
    if (wrap.hidden) return;
    wrap.style.height = `${Math.max(360, Math.floor(window.innerHeight - wrap.getBoundingClientRect().top - 16))}px`;
  }
  window.addEventListener("resize", fitGeo);

  function ensureGeo() {
    fitGeo();
    if (geo) {
      geo.map.invalidateSize();
      geo.editor.render();
      return;
    }
    const map = L.map("geo-map", { zoomControl: true, attributionControl: false, doubleClickZoom: false, zoomAnimation: false, zoomSnap: 0.25, minZoom: 2, maxZoom: 23 }).setView([0, 0], 2);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    if (SE.config.tiles_url) {
      L.tileLayer(SE.config.tiles_url, { subdomains: SE.config.tiles_subdomains || "abc", maxNativeZoom: SE.config.tiles_max_zoom || 19, maxZoom: 23, attribution: SE.config.tiles_attribution }).addTo(map);
      L.control.attribution({ prefix: false }).addTo(map);
    }
    map.createPane("grid").style.zIndex = 250; // over the tiles (200), under the data
    const layers = { grid: L.layerGroup().addTo(map), footprint: L.layerGroup().addTo(map), detections: L.layerGroup().addTo(map) };
    const svg = $("geo-overlay");
    const editor = new SE.ShapeEditor(
      svg,
      {
        backgroundClicks: false,
        toScreen: ([lat, lon]) => {
          const p = map.latLngToContainerPoint([lat, lon]);
          return [p.x, p.y];
        },
        fromScreen: ([x, y]) => {
          const ll = map.containerPointToLatLng([x, y]);
          return [round(Math.max(-90, Math.min(90, ll.lat)), 7), round(((((ll.lng + 180) % 360) + 360) % 360) - 180, 7)];
        },
      },
      editorCallbacks("geo"),
    );
    map.on("click", (e) => editor.addPoint([e.containerPoint.x, e.containerPoint.y]));
    map.on("mousemove", (e) => editor.hover([e.containerPoint.x, e.containerPoint.y]));
    map.on("move zoom viewreset resize", () => editor.render());
    map.on("moveend zoomend", () => SE.geoGrid.drawMetricGrid(map, layers.grid, geo.origin, "grid"));
    new ResizeObserver(() => map.invalidateSize()).observe($("geo-map"));
    geo = { map, editor, layers, fitted: false, origin: null };
    editor.setReadOnly(!canEdit);
    editor.setShapes(shapesIn("geo"));
    drawGeoContext();
  }

  async function loadGeoContext() {
    const s = st.server;
    if (geo) geo.origin = null;
    st.telemetry = null;
    st.geoEvents = [];
    if (!s) return;
    try {
      const all = await api("GET", "/api/telemetry");
      st.telemetry = all.find((t) => t.node === s.node && t.stream === s.stream) || null;
    } catch {
      /* pilots' data: a role without it draws without the footprint */
    }
    try {
      const page = await api("GET", `/api/events?node=${encodeURIComponent(s.node)}&stream=${encodeURIComponent(s.stream)}&limit=200`);
      st.geoEvents = (page.items || []).filter((e) => e.geo && isNum(e.geo.lat));
    } catch {
      /* no dots */
    }
    if (geo) {
      geo.fitted = false;
      drawGeoContext();
    }
  }

  function footprintOf(t) {
    const fp = t && (t.footprint || (t.sensor && t.sensor.corners));
    return Array.isArray(fp) && fp.length >= 3 ? fp : null;
  }

  function drawGeoContext() {
    if (!geo) return;
    const { map, layers } = geo;
    layers.footprint.clearLayers();
    layers.detections.clearLayers();
    const pts = [];
    const fp = footprintOf(st.telemetry);
    if (fp) {
      layers.footprint.addLayer(L.polygon(fp, { color: "#1f63d6", weight: 1.5, dashArray: "7 4", fillOpacity: 0.08, interactive: false }));
      pts.push(...fp);
    }
    const v = st.telemetry && (st.telemetry.vehicle || {});
    const se = st.telemetry && (st.telemetry.sensor || {});
    const pos = v && isNum(v.lat) ? [v.lat, v.lon] : se && isNum(se.sensor_lat) ? [se.sensor_lat, se.sensor_lon] : null;
    if (pos) {
      layers.footprint.addLayer(L.circleMarker(pos, { radius: 6, color: "#fff", weight: 2, fillColor: "#1f63d6", fillOpacity: 1, interactive: false }));
      pts.push(pos);
    }
    for (const e of st.geoEvents || []) {
      layers.detections.addLayer(L.circleMarker([e.geo.lat, e.geo.lon], { radius: 4, color: SE.labelColor(e.label), weight: 1, fillOpacity: 0.6, interactive: false }));
      pts.push([e.geo.lat, e.geo.lon]);
    }
    for (const sh of shapesIn("geo")) pts.push(...sh.points);
    $("geo-note").textContent = pts.length
      ? [fp ? "dashed: the camera's latest footprint" : null, (st.geoEvents || []).length ? `dots: ${st.geoEvents.length} recent positioned detections` : null].filter(Boolean).join(" · ")
      : "No position known for this stream yet (no telemetry, no geolocated detections). Geofences need a geolocated stream.";
    if (pts.length && !geo.origin) geo.origin = { lat: pts[0][0], lon: pts[0][1], cos: Math.cos((pts[0][0] * Math.PI) / 180) };
    SE.geoGrid.drawMetricGrid(map, layers.grid, geo.origin, "grid");
    if (!geo.fitted && pts.length) {
      map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 19, animate: false });
      geo.fitted = true;
    }
    geo.editor.render();
  }

  SE.live.on("telemetry", (t) => {
    const s = st.server;
    if (!s || t.node !== s.node || t.stream !== s.stream) return;
    st.telemetry = t;
    if (geo && st.space === "geo") drawGeoContext();
  });

  // ---------------------------------------------------------------------------------------- counts
  /* What the rules count, as the edge reports it every counts interval: objects in each zone over the last
     hour (a sparkline each) and each line's crossings per direction. */
  const COUNTS_WINDOW_S = 3600;
  let counts = []; // points, oldest first

  async function loadCounts() {
    const s = st.server;
    counts = [];
    renderCounts();
    if (!s) return;
    try {
      const p = new URLSearchParams({ start: (SE.nowS() - COUNTS_WINDOW_S).toFixed(0), limit: "2000" });
      const r = await api("GET", `/api/counts/${encodeURIComponent(s.node)}/${encodeURIComponent(s.stream)}?${p}`);
      if (st.server === s) counts = r.points || [];
    } catch {
      /* no counts shown */
    }
    renderCounts();
  }

  SE.live.on("counts", (m) => {
    const s = st.server;
    if (!s || m.node !== s.node || m.stream !== s.stream) return;
    counts.push({ time: m.time, zones: m.zones || {}, lines: m.lines || {}, rules_version: m.rules_version });
    while (counts.length && counts[0].time < SE.nowS() - COUNTS_WINDOW_S) counts.shift();
    renderCounts();
  });

  function sparkline(values, t0, t1, max) {
    const W = 240;
    const H = 36;
    const x = (t) => (((t - t0) / Math.max(1, t1 - t0)) * W).toFixed(1);
    const y = (v) => (H - 2 - (v / Math.max(1, max)) * (H - 4)).toFixed(1);
    return SE.s(
      "svg",
      { class: "spark", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "aria-hidden": "true" },
      SE.s("line", { x1: 0, y1: H - 2, x2: W, y2: H - 2, class: "spark-base" }),
      SE.s("polyline", { points: values.map(([t, v]) => `${x(t)},${y(v)}`).join(" "), class: "spark-line" }),
    );
  }

  function renderCounts() {
    const box = $("counts-box");
    box.hidden = counts.length === 0;
    if (!counts.length) return;
    const first = counts[0];
    const last = counts[counts.length - 1];
    const t0 = first.time; // the chart spans what there is (up to the hour)
    const t1 = Math.max(last.time, t0 + 1);
    const zones = [...new Set(counts.flatMap((c) => Object.keys(c.zones)))].sort();
    const cells = zones.map((zone) => {
      const values = counts.filter((c) => zone in c.zones).map((c) => [c.time, c.zones[zone]]);
      const max = Math.max(...values.map(([, v]) => v));
      return h(
        "div",
        { class: "count", dataset: { zone, now: String(last.zones[zone] ?? "") } },
        h("div", { class: "count-head" }, h("strong", null, zone), h("span", { class: "count-now" }, String(last.zones[zone] ?? SE.DASH)), h("span", { class: "muted small" }, `now · max ${max}`)),
        sparkline(values, t0, t1, max),
      );
    });
    for (const [line, now] of Object.entries(last.lines).sort()) {
      const before = (counts.find((c) => line in c.lines) || last).lines[line];
      cells.push(
        h(
          "div",
          { class: "count", dataset: { line } },
          h("div", { class: "count-head" }, h("strong", null, line), h("span", { class: "count-now" }, `in ${now.in || 0} · out ${now.out || 0}`)),
          h("div", { class: "muted small" }, `since the rules started; last hour: in ${(now.in || 0) - (before.in || 0)} · out ${(now.out || 0) - (before.out || 0)}`),
        ),
      );
    }
    $("counts").replaceChildren(...cells);
    $("counts-sub").textContent = `${counts.length} reports, ${SE.fmtClock(first.time)} → ${SE.fmtClock(last.time)} · rules v${last.rules_version}`;
  }

  // --------------------------------------------------------------------------------- the side panel
  function numberInput(obj, key, model, opts = {}) {
    const m = meta(model, key);
    const input = h("input", {
      type: "number", id: opts.id, min: isNum(m.min) ? m.min : null, max: isNum(m.max) ? m.max : null, step: opts.step || (m.type === "integer" ? 1 : "any"),
      value: obj[key] === null || obj[key] === undefined ? "" : obj[key], placeholder: m.nullable ? "off" : String(m.default ?? ""), disabled: !canEdit,
      dataset: { field: key },
    });
    input.addEventListener("input", () => {
      const raw = input.value.trim();
      obj[key] = raw === "" ? (m.nullable ? null : m.default) : Number(raw);
      updateSaveState();
    });
    return field(m, input, opts.unit);
  }

  function field(m, input, unit) {
    const id = input.id || `f-${uid()}`;
    input.id = id;
    return h("div", { class: "field", title: m.description }, h("label", { for: id }, m.title, unit ? h("span", { class: "unit" }, ` (${unit})`) : null), input);
  }

  function selectInput(obj, key, options, m, onChange) {
    const sel = h("select", { disabled: !canEdit, dataset: { field: key } }, options.map(([v, text]) => h("option", { value: v, selected: obj[key] === v }, text)));
    sel.addEventListener("change", () => {
      obj[key] = sel.value === "" ? null : sel.value;
      updateSaveState();
      if (onChange) onChange();
    });
    return field(m, sel);
  }

  function checkInput(obj, key, model) {
    const m = meta(model, key);
    const box = h("input", { type: "checkbox", checked: Boolean(obj[key]), disabled: !canEdit, dataset: { field: key } });
    box.addEventListener("change", () => {
      obj[key] = box.checked;
      updateSaveState();
    });
    return h("label", { class: "check", title: m.description }, box, m.title);
  }

  function nameInput(item, onRename) {
    const input = h("input", { type: "text", value: item.name, maxlength: "64", pattern: "[A-Za-z0-9_\\-]{1,64}", disabled: !canEdit, dataset: { field: "name" }, spellcheck: "false" });
    input.addEventListener("change", () => {
      const old = item.name;
      item.name = input.value.trim();
      if (onRename) onRename(old, item.name);
      updateSaveState();
    });
    return field({ title: "Name", description: "Letters, digits, _ and - (it is used in MQTT topics and alerts)" }, input);
  }

  function labelsInput(filter) {
    const m = meta("ObjectFilter", "labels");
    const input = h("input", { type: "text", value: (filter.labels || []).join(", "), placeholder: "every class", list: "known-labels", disabled: !canEdit, dataset: { field: "labels" }, spellcheck: "false" });
    input.addEventListener("input", () => {
      const labels = input.value.split(",").map((x) => x.trim()).filter(Boolean);
      filter.labels = labels.length ? labels : null;
      updateSaveState();
    });
    return field(m, input, "comma-separated");
  }

  const pointsText = (item) =>
    item.points.map((p) => (item.space === "geo" ? `${p[0].toFixed(6)}, ${p[1].toFixed(6)}` : `${p[0].toFixed(3)}, ${p[1].toFixed(3)}`)).join("  ·  ");

  function renderPointsText() {
    for (const item of [...st.draft.zones, ...st.draft.lines]) {
      const el = shapesBox.querySelector(`[data-uid="${item.uid}"] .points`);
      if (el) el.textContent = pointsText(item);
    }
  }

  function shapeCard(item, kind, index) {
    const space = item.space || "image";
    const f = item.filter;
    const card = h(
      "details",
      { class: "item shape", open: st.open.has(item.uid), dataset: { uid: item.uid, path: `${kind}s.${index}` } },
      h(
        "summary",
        null,
        h("span", { class: "chip-dot" }),
        h("strong", { class: "item-name" }, item.name),
        h("span", { class: "badge" }, `${kind} · ${space === "geo" ? "map" : "picture"}`),
        h("span", { class: "muted small" }, kind === "zone" ? `${item.points.length} points` : "a → b"),
      ),
      h(
        "div",
        { class: "item-body" },
        nameInput(item, (old, name) => {
          for (const r of st.draft.rules) if ((kind === "zone" ? r.zone : r.line) === old) r[kind] = name;
          renderSide();
          syncEditors();
        }),
        h("div", { class: "points mono small muted", title: space === "geo" ? "lat, lon of each point" : "x, y of each point (fractions of the frame)" }, pointsText(item)),
        h("h4", null, "Which objects count"),
        h(
          "div",
          { class: "grid-fields" },
          labelsInput(f),
          numberInput(f, "min_score", "ObjectFilter", { step: 0.05 }),
          numberInput(f, "min_size_px", "ObjectFilter", { unit: "px" }),
          numberInput(f, "min_size_m", "ObjectFilter", { unit: "m, geolocated streams" }),
          numberInput(f, "min_time_s", "ObjectFilter", { unit: "s", step: 0.5 }),
          numberInput(f, "min_frames", "ObjectFilter"),
          numberInput(f, "inertia_frames", "ObjectFilter", { unit: "frames" }),
        ),
        canEdit ? h("div", { class: "row-actions" }, h("button", { type: "button", class: "btn-small btn-danger", dataset: { action: "delete" }, onclick: () => deleteShape(item) }, `Delete ${kind}`)) : null,
      ),
    );
    card.querySelector(".chip-dot").style.background = colorOf(item);
    card.addEventListener("toggle", () => {
      if (card.open) {
        st.open.add(item.uid);
        if ((item.space || "image") !== st.space) setSpace(item.space || "image");
        activeEditor().select(item.uid);
        highlightCard(item.uid);
      } else st.open.delete(item.uid);
    });
    return card;
  }

  function ruleCard(rule, index) {
    const onLine = KINDS_ON_LINES.includes(rule.kind);
    const targets = onLine ? st.draft.lines : st.draft.zones;
    const targetKey = onLine ? "line" : "zone";
    const explain = h("p", { class: "muted small rule-explain" });
    const setExplain = () => {
      const t = rule[targetKey] || "?";
      explain.textContent = `Alert (${rule.severity}) when ${KIND_HELP[rule.kind] || rule.kind}: ${targetKey} ${t}${rule.kind === "cross" ? `, direction ${rule.direction}` : ""}.`;
    };
    setExplain();
    const kindChanged = () => {
      const nowOnLine = KINDS_ON_LINES.includes(rule.kind);
      if (nowOnLine !== onLine) {
        rule.zone = nowOnLine ? null : (st.draft.zones[0] || {}).name || null;
        rule.line = nowOnLine ? (st.draft.lines[0] || {}).name || null : null;
      }
      renderSide();
    };
    const body = [
      h("div", { class: "grid-fields" },
        nameInput(rule),
        selectInput(rule, "kind", KINDS.map((k) => [k, k]), meta("Rule", "kind"), kindChanged),
        selectInput(rule, targetKey, [["", `— choose a ${targetKey} —`], ...targets.map((t) => [t.name, t.name])], meta("Rule", targetKey), setExplain),
        onLine ? selectInput(rule, "direction", DIRECTIONS.map((d) => [d, d === "in" ? "in (right → left of a→b)" : d === "out" ? "out (left → right)" : "any (in and out apart)"]), meta("Rule", "direction"), setExplain) : null,
        ["loiter", "crowd"].includes(rule.kind) ? numberInput(rule, "duration_s", "Rule", { unit: "s", step: 1 }) : null,
        rule.kind === "crowd" ? numberInput(rule, "min_count", "Rule") : null,
        selectInput(rule, "severity", SEVERITIES.map((s) => [s, s]), { title: "Severity", description: "How urgent its alerts are (webhooks and notifications may filter on it)" }, setExplain),
        numberInput(rule, "cooldown_s", "Rule", { unit: "s", step: 1 }),
      ),
      explain,
      h("div", { class: "row-actions" }, checkInput(rule, "enabled", "Rule"), h("span", { class: "spacer" }), canEdit ? h("button", { type: "button", class: "btn-small btn-danger", dataset: { action: "delete" }, onclick: () => { st.draft.rules.splice(st.draft.rules.indexOf(rule), 1); renderSide(); updateSaveState(); } }, "Delete rule") : null),
    ];
    const card = h(
      "details",
      { class: "item rule", open: st.open.has(rule.uid), dataset: { uid: rule.uid, path: `rules.${index}` } },
      h("summary", null, h("strong", { class: "item-name" }, rule.name), h("span", { class: `badge sev ${rule.severity}` }, rule.kind), h("span", { class: "muted small" }, `${targetKey} ${rule[targetKey] || "?"}`), rule.enabled ? null : h("span", { class: "badge" }, "off")),
      h("div", { class: "item-body" }, ...body),
    );
    card.addEventListener("toggle", () => (card.open ? st.open.add(rule.uid) : st.open.delete(rule.uid)));
    return card;
  }

  function renderSide() {
    const d = st.draft;
    if (!d) return;
    shapesBox.replaceChildren(...d.zones.map((z, i) => shapeCard(z, "zone", i)), ...d.lines.map((l, i) => shapeCard(l, "line", i)));
    $("shapes-empty").hidden = d.zones.length + d.lines.length > 0;
    rulesBox.replaceChildren(...d.rules.map((r, i) => ruleCard(r, i)));
    $("rules-empty").hidden = d.rules.length > 0;
    settingsBox.replaceChildren(
      checkInput(d.clip, "enabled", "ClipSettings"),
      numberInput(d.clip, "pre_s", "ClipSettings", { unit: "s", step: 0.5 }),
      numberInput(d.clip, "post_s", "ClipSettings", { unit: "s", step: 0.5 }),
      numberInput(d, "counts_interval_s", "RuleSet", { unit: "s", step: 1 }),
    );
    if (!document.getElementById("known-labels")) document.body.append(h("datalist", { id: "known-labels" }));
    $("known-labels").replaceChildren(...st.labels.map((l) => h("option", { value: l })));
    highlightCard(activeEditor().selected);
    updateSaveState();
  }

  function highlightCard(id) {
    for (const el of shapesBox.querySelectorAll(".item")) el.classList.toggle("selected", el.dataset.uid === id);
  }

  function updateSaveState() {
    const changed = dirty();
    saveBtn.disabled = !canEdit || !changed;
    $("revert").disabled = !changed;
    const next = (st.server && st.server.version) || 0;
    saveBtn.textContent = changed ? `Save as v${next + 1}` : "Saved";
    $("clear").disabled = !canEdit || !st.server || st.server.version === null || st.server.rules === null;
  }

  // ---------------------------------------------------------------------------------------- saving
  /** A 422's errors, each with the field it names: "zones[0].points: the polygon is not simple …". */
  function fieldErrors(err) {
    const detail = Array.isArray(err.detail) ? err.detail : [{ loc: [], msg: err.message }];
    return detail.map((d) => {
      const loc = (d.loc || []).filter((p) => p !== "body");
      const path = loc.map((p, i) => (typeof p === "number" ? `[${p}]` : (i ? "." : "") + p)).join("");
      const msg = String(d.msg || "").replace(/^Value error, /, "");
      return { loc, text: path ? `${path}: ${msg}` : msg, where: loc.length ? loc : pathOf(msg) };
    });
  }

  /** The field a message starts with ("rules[0].zone: …", "zones[1].filter.labels: …") as a loc list. */
  function pathOf(text) {
    const m = String(text).match(/^(zones|lines|rules)\[(\d+)\]((?:\.[a-z_]+)*)/);
    return m ? [m[1], Number(m[2]), ...m[3].split(".").filter(Boolean)] : [];
  }

  function markInvalid(errors) {
    for (const el of document.querySelectorAll(".rules-side .invalid")) el.classList.remove("invalid");
    let first = null;
    for (const e of errors) {
      const [list, index, ...rest] = e.where;
      if (!["zones", "lines", "rules"].includes(list) || !isNum(index)) continue;
      const card = document.querySelector(`.rules-side [data-path="${list}.${index}"]`);
      if (!card) continue;
      card.classList.add("invalid");
      card.open = true;
      const leaf = [...rest].reverse().find((p) => typeof p === "string" && p !== "filter");
      const input = leaf && card.querySelector(`[data-field="${leaf}"]`);
      if (input) input.classList.add("invalid");
      first = first || input || card;
    }
    if (first) first.scrollIntoView({ block: "nearest" });
  }

  saveBtn.addEventListener("click", async () => {
    const s = st.server;
    if (!s) return;
    saveBtn.disabled = true;
    saveError.replaceChildren();
    try {
      const body = payload();
      const saved = await api("PUT", `/api/rules/${encodeURIComponent(s.node)}/${encodeURIComponent(s.stream)}?base_version=${s.version || 0}`, body);
      const done = h("div", { class: "notice notice-ok", id: "saved-notice" }, `Saved v${saved.version}${saved.published ? ", sent to the edge" : " (the broker has not confirmed it yet: sent when the station reconnects)"}.`);
      notice.replaceChildren(done);
      setTimeout(() => {
        done.remove();
        fitCanvas();
        fitGeo();
      }, 8000);
      st.server = await api("GET", `/api/rules/${encodeURIComponent(s.node)}/${encodeURIComponent(s.stream)}`);
      startDraft(st.server.rules);
      renderSync();
      loadStreams().catch(() => {});
    } catch (err) {
      if (err.status === 422) {
        const errors = fieldErrors(err);
        saveError.replaceChildren(h("div", { class: "notice notice-error", role: "alert", id: "field-errors" }, h("strong", null, "Not saved: "), h("ul", null, errors.map((e) => h("li", null, e.text)))));
        markInvalid(errors);
      } else {
        saveError.replaceChildren(SE.errorBox(err));
      }
      updateSaveState();
    }
  });

  $("revert").addEventListener("click", () => {
    if (st.server) startDraft(st.server.rules);
    saveError.replaceChildren();
  });

  $("clear").addEventListener("click", async () => {
    const s = st.server;
    if (!s || !confirm(`Clear the station's rules for ${s.stream}? Its node ${s.node} runs the rules of its own YAML again.`)) return;
    try {
      await api("DELETE", `/api/rules/${encodeURIComponent(s.node)}/${encodeURIComponent(s.stream)}?base_version=${s.version || 0}`);
      await openStream(st.key);
    } catch (err) {
      saveError.replaceChildren(SE.errorBox(err));
    }
  });

  window.addEventListener("beforeunload", (e) => {
    if (dirty()) e.preventDefault();
  });

  // ------------------------------------------------------------------------------------------ start
  if (!canEdit) {
    $("readonly-note").replaceChildren(h("div", { class: "notice notice-info" }, `Your role (${session.role}) may view the rules; supervisors and admins edit them.`));
    for (const id of ["tool-zone", "tool-line", "save", "revert", "clear", "add-rule"]) $(id).hidden = true;
    imageEditor.setReadOnly(true);
  }
  $("add-rule").addEventListener("click", () => {
    const zone = st.draft.zones[0];
    const line = st.draft.lines[0];
    const kind = zone ? "enter" : "cross";
    const rule = { uid: uid(), ...defaults("Rule"), name: uniqueRuleName(kind), kind, zone: zone ? zone.name : null, line: zone ? null : line ? line.name : null };
    st.draft.rules.push(rule);
    st.open.add(rule.uid);
    renderSide();
  });

  api("GET", "/api/stats")
    .then((stats) => {
      st.labels = (stats.by_label || []).map((b) => b.key).sort();
      if ($("known-labels")) $("known-labels").replaceChildren(...st.labels.map((l) => h("option", { value: l })));
    })
    .catch(() => {});

  try {
    await loadStreams();
  } catch (err) {
    notice.replaceChildren(SE.errorBox(err));
  }
  const p = new URLSearchParams(location.search);
  const wanted = p.get("node") && p.get("stream") ? `${p.get("node")}/${p.get("stream")}` : null;
  const first = wanted || (st.streams[0] && `${st.streams[0].node}/${st.streams[0].stream}`);
  if (first) await openStream(first);
  else {
    placeholder("No stream has reported to this station yet.");
    hint.textContent = "";
  }
  SE.live.start();
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
