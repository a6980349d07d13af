/* Pilot map: works offline. An SVG in local metres (equirectangular around the first position seen,
   plenty for a few km) with a metric grid, scale bar and north arrow; auto-fits to the data. Draws
   every drone (position + heading arrow), its bounded track, its camera footprint and the detections
   that carry `geo` (circle radius = 1-sigma uncertainty). A HUD shows the selected drone's state.
   Map tiles only when window.SMARTEYE_CONFIG.tiles_url is set. */
"use strict";

(async function () {
  const { h, s, api, isNum, DASH } = SE;
  const session = await SE.init("map");

  const R = 6378137;
  const D2R = Math.PI / 180;
  const MAX_TRACK = 600; // points per drone
  const TRACK_MAX_AGE_S = 3600;
  const MAX_MARKERS = 300;
  const HISTORY_PAGES = 3; // pages of /api/events read at start for positioned detections
  const HISTORY_WANTED = 100;
  const FRESH_S = 60; // a live detection pulses this long
  const DRONE_STALE_S = 30;
  const LIST_MAX = 30;
  const DRONE_COLORS = ["#1f63d6", "#e07b00", "#8e3bc4", "#00838f", "#c2185b", "#2a9d3c"];

  const $ = (id) => document.getElementById(id);
  const svg = $("map");
  const hud = $("hud");
  const hudNote = $("hud-note");
  const droneSelect = $("drone-select");
  const detList = $("det-list");
  const detail = $("detail");
  const fitBtn = $("fit");
  const readout = $("readout");

  const drones = new Map(); // "node/stream" → {key, node, stream, t, track: [[lat, lon, time]], color, received}
  const markers = new Map(); // event_id → {ev, live, at}
  const offlineNodes = new Set();
  const layers = { tracks: true, footprints: true, detections: true };
  const view = { cx: 0, cy: 0, k: 0.5, auto: true, w: 0, h: 0 }; // k: pixels per metre
  let origin = null;
  let selectedDrone = "";
  let selectedMarker = null;

  // ------------------------------------------------------------------------------------ projection
  function project(lat, lon) {
    if (!origin) origin = { lat, lon, cos: Math.cos(lat * D2R) };
    return [(lon - origin.lon) * D2R * R * origin.cos, (lat - origin.lat) * D2R * R];
  }
  const unproject = (x, y) => [origin.lat + y / R / D2R, origin.lon + x / (R * origin.cos) / D2R];
  const toScreen = ([x, y]) => [view.w / 2 + (x - view.cx) * view.k, view.h / 2 - (y - view.cy) * view.k];
  const fromScreen = (px, py) => [view.cx + (px - view.w / 2) / view.k, view.cy - (py - view.h / 2) / view.k];
  const screenOf = (lat, lon) => toScreen(project(lat, lon));
  const f1 = (v) => v.toFixed(1);

  // ------------------------------------------------------------------------------------- telemetry
  function pose(t) {
    const v = t && t.vehicle;
    const se = t && t.sensor;
    if (v && isNum(v.lat) && isNum(v.lon)) {
      const heading = isNum(v.heading_deg) ? v.heading_deg : isNum(v.yaw_deg) ? (v.yaw_deg + 360) % 360 : null;
      return { lat: v.lat, lon: v.lon, heading };
    }
    if (se && isNum(se.sensor_lat) && isNum(se.sensor_lon)) {
      return { lat: se.sensor_lat, lon: se.sensor_lon, heading: isNum(se.platform_heading_deg) ? se.platform_heading_deg : null };
    }
    return null;
  }

  function footprintOf(t) {
    const fp = t.footprint || (t.sensor && t.sensor.corners);
    return Array.isArray(fp) && fp.length >= 3 && fp.every((p) => Array.isArray(p) && isNum(p[0]) && isNum(p[1])) ? fp : null;
  }

  const altitudeOf = (t) => (t.vehicle ? (isNum(t.vehicle.alt_rel_m) ? t.vehicle.alt_rel_m : t.vehicle.alt_amsl_m) : t.sensor && t.sensor.sensor_alt_m);

  function onTelemetry(t, received) {
    if (!t || !t.node || !t.stream) return;
    const key = `${t.node}/${t.stream}`;
    let d = drones.get(key);
    if (!d) {
      d = { key, node: t.node, stream: t.stream, track: [], color: DRONE_COLORS[drones.size % DRONE_COLORS.length] };
      drones.set(key, d);
      fillDroneSelect();
    }
    d.t = t;
    d.received = received;
    const p = pose(t);
    if (p) {
      const last = d.track[d.track.length - 1];
      if (!last || Math.abs(last[0] - p.lat) > 2e-6 || Math.abs(last[1] - p.lon) > 2e-6) d.track.push([p.lat, p.lon, t.time]);
      if (d.track.length > MAX_TRACK) d.track.splice(0, d.track.length - MAX_TRACK);
      while (d.track.length > 1 && isNum(t.time) && t.time - d.track[0][2] > TRACK_MAX_AGE_S) d.track.shift();
      project(p.lat, p.lon); // sets the origin on the first position
    }
    if (!selectedDrone) selectDrone(key);
    else if (selectedDrone === key) renderHud();
    scheduleRender();
  }

  function isStale(d) {
    return offlineNodes.has(d.node) || !isNum(d.received) || SE.nowS() - d.received > DRONE_STALE_S;
  }

  // ------------------------------------------------------------------------------------ detections
  function onEvent(ev, live) {
    const g = ev && ev.geo;
    if (!g || !isNum(g.lat) || !isNum(g.lon)) return;
    const old = markers.get(ev.event_id);
    if (old && old.ev.seq > ev.seq) return; // keep the latest position of the object
    markers.set(ev.event_id, { ev, live: live || (old && old.live), at: live ? SE.nowS() : old && old.at });
    project(g.lat, g.lon);
    if (markers.size > MAX_MARKERS) {
      let oldest = null;
      for (const [id, m] of markers) if (!oldest || m.ev.capture_time < oldest[1]) oldest = [id, m.ev.capture_time];
      markers.delete(oldest[0]);
    }
    scheduleRender();
    scheduleList();
  }

  const isFresh = (m) => m.live && isNum(m.at) && SE.nowS() - m.at < FRESH_S;
  const markerRadius = (m) => (isNum(m.ev.geo.uncertainty_m) ? Math.max(6, m.ev.geo.uncertainty_m * view.k) : 12);

  // ---------------------------------------------------------------------------------------- drawing
  function niceAtLeast(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function niceAtMost(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [5, 2, 1]) if (m * p <= v) return m * p;
    return p;
  }

  function fit() {
    const pts = [];
    for (const d of drones.values()) {
      const p = pose(d.t);
      if (p) pts.push(project(p.lat, p.lon));
      const fp = layers.footprints && footprintOf(d.t);
      if (fp) for (const [la, lo] of fp) pts.push(project(la, lo));
      if (layers.tracks) for (const [la, lo] of d.track.slice(-200)) pts.push(project(la, lo));
    }
    if (layers.detections) for (const m of markers.values()) pts.push(project(m.ev.geo.lat, m.ev.geo.lon));
    if (!pts.length) return;
    let [minx, miny, maxx, maxy] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of pts) {
      minx = Math.min(minx, x);
      maxx = Math.max(maxx, x);
      miny = Math.min(miny, y);
      maxy = Math.max(maxy, y);
    }
    const pad = 56;
    const ex = Math.max(maxx - minx, 80);
    const ey = Math.max(maxy - miny, 80);
    view.k = Math.min(Math.max(view.w - 2 * pad, 50) / ex, Math.max(view.h - 2 * pad, 50) / ey);
    view.cx = (minx + maxx) / 2;
    view.cy = (miny + maxy) / 2;
  }

  function drawTiles(g) {
    const tpl = SE.config.tiles_url;
    if (!tpl || !origin) return;
    const lat0 = unproject(view.cx, view.cy)[0];
    let z = Math.floor(Math.log2((156543.03392 * Math.cos(lat0 * D2R)) * view.k));
    z = Math.max(0, Math.min(SE.config.tiles_max_zoom || 19, z));
    const n = 2 ** z;
    const [latN, lonW] = unproject(...fromScreen(0, 0));
    const [latS, lonE] = unproject(...fromScreen(view.w, view.h));
    const tx = (lon) => Math.floor(((lon + 180) / 360) * n);
    const ty = (lat) => Math.floor(((1 - Math.log(Math.tan(lat * D2R) + 1 / Math.cos(lat * D2R)) / Math.PI) / 2) * n);
    const lonOf = (x) => (x / n) * 360 - 180;
    const latOf = (y) => Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) / D2R;
    const [x0, x1, y0, y1] = [tx(lonW), tx(lonE), Math.max(0, ty(latN)), Math.min(n - 1, ty(latS))];
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > 100) return;
    const subs = SE.config.tiles_subdomains || "abc";
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) {
        const [ax, ay] = screenOf(latOf(y), lonOf(x));
        const [bx, by] = screenOf(latOf(y + 1), lonOf(x + 1));
        const xx = ((x % n) + n) % n;
        const url = tpl
          .replace("{z}", z)
          .replace("{x}", xx)
          .replace("{y}", y)
          .replace("{s}", subs[(xx + y) % subs.length]);
        g.append(s("image", { href: url, x: f1(ax), y: f1(ay), width: f1(bx - ax + 0.5), height: f1(by - ay + 0.5), preserveAspectRatio: "none" }));
      }
    }
  }

  function drawGrid(g) {
    const step = niceAtLeast(90 / view.k);
    const [xa, yb] = fromScreen(0, view.h);
    const [xb, ya] = fromScreen(view.w, 0);
    for (let i = Math.ceil(xa / step); i * step <= xb; i++) {
      const x = f1(toScreen([i * step, 0])[0]);
      g.append(s("line", { x1: x, y1: 0, x2: x, y2: view.h, class: i % 5 === 0 ? "grid-major" : "grid-minor" }));
    }
    for (let j = Math.ceil(yb / step); j * step <= ya; j++) {
      const y = f1(toScreen([0, j * step])[1]);
      g.append(s("line", { x1: 0, y1: y, x2: view.w, y2: y, class: j % 5 === 0 ? "grid-major" : "grid-minor" }));
    }
    return step;
  }

  function drawOverlay(g, step) {
    // scale bar, bottom left
    const len = niceAtMost(170 / view.k);
    const px = len * view.k;
    const x0 = 18;
    const y0 = view.h - 20;
    const text = `grid ${SE.fmtMetres(step)}`;
    g.append(s("rect", { x: x0 - 10, y: y0 - 26, width: px + 110, height: 40, rx: 5, fill: "rgba(255,255,255,0.88)", stroke: "#b9c3cf" }));
    for (let i = 0; i < 4; i++) {
      g.append(s("rect", { x: f1(x0 + (i * px) / 4), y: y0, width: f1(px / 4), height: 6, fill: i % 2 ? "#fff" : "#17202b", stroke: "#17202b", "stroke-width": 1 }));
    }
    g.append(s("text", { class: "map-text", x: x0, y: y0 - 6, "text-anchor": "start" }, "0"));
    g.append(s("text", { class: "map-text bold", x: f1(x0 + px), y: y0 - 6, "text-anchor": "middle", id: "scale-label" }, SE.fmtMetres(len)));
    g.append(s("text", { class: "map-text", x: f1(x0 + px + 14), y: y0 + 6 }, text));
    // north arrow, left under the zoom buttons
    const nx = 34;
    const ny = 182;
    g.append(
      s(
        "g",
        { transform: `translate(${nx} ${ny})` },
        s("circle", { r: 17, fill: "rgba(255,255,255,0.9)", stroke: "#b9c3cf" }),
        s("path", { d: "M0,-12 L6,6 L0,2 L-6,6 Z", fill: "#17202b" }),
        s("text", { class: "map-text bold", y: -20, "text-anchor": "middle" }, "N"),
      ),
    );
  }

  function drawDrone(g, d) {
    const p = pose(d.t);
    if (!p) return;
    const [x, y] = screenOf(p.lat, p.lon);
    const grp = s("g", {
      class: "drone" + (isStale(d) ? " stale" : ""),
      transform: `translate(${f1(x)} ${f1(y)})`,
      "data-drone": d.key,
    });
    if (d.key === selectedDrone) grp.append(s("circle", { r: 23, class: "halo" }));
    if (isNum(p.heading)) {
      grp.append(s("line", { x1: 0, y1: 0, x2: 0, y2: -42, stroke: d.color, "stroke-width": 2, "stroke-dasharray": "3 3", transform: `rotate(${f1(p.heading)})` }));
      grp.append(s("path", { d: "M0,-17 L11,12 L0,6 L-11,12 Z", fill: d.color, transform: `rotate(${f1(p.heading)})` }));
    } else {
      grp.append(s("circle", { r: 9, class: "body", fill: d.color }));
    }
    grp.append(s("text", { class: "map-text bold", x: 20, y: 2 }, d.stream));
    const alt = altitudeOf(d.t);
    const sub = [isNum(alt) ? `${Math.round(alt)} m` : null, isStale(d) ? "stale" : null].filter(Boolean).join(" · ");
    if (sub) grp.append(s("text", { class: "map-text", x: 20, y: 17 }, sub));
    g.append(grp);
  }

  function drawFootprint(g, d) {
    const fp = footprintOf(d.t);
    if (!fp) return;
    const pts = fp.map(([la, lo]) => screenOf(la, lo).map(f1).join(",")).join(" ");
    g.append(s("polygon", { points: pts, fill: d.color, "fill-opacity": 0.13, stroke: d.color, "stroke-width": 1.5, "stroke-dasharray": "7 4", "data-footprint": d.key }));
  }

  function drawTrack(g, d) {
    if (d.track.length < 2) return;
    const pts = d.track.map(([la, lo]) => screenOf(la, lo).map(f1).join(",")).join(" ");
    g.append(s("polyline", { points: pts, fill: "none", stroke: d.color, "stroke-width": 2.5, "stroke-opacity": 0.75, "stroke-linejoin": "round", "data-track": d.key }));
  }

  function drawMarker(g, m) {
    const { geo, label, event_id: id } = m.ev;
    const [x, y] = screenOf(geo.lat, geo.lon);
    const r = markerRadius(m);
    const c = SE.labelColor(label);
    const fresh = isFresh(m);
    const grp = s("g", { class: "marker", "data-event-id": id, opacity: fresh || id === selectedMarker ? 1 : 0.7 });
    grp.append(s("title", null, `${label} ${SE.fmtScore(m.ev.top_score)} · ${SE.geoText(m.ev)} · ${SE.fmtTime(m.ev.capture_time)}`));
    grp.append(
      s("circle", {
        cx: f1(x), cy: f1(y), r: f1(r), fill: c, "fill-opacity": 0.16, stroke: c, "stroke-width": 1.5,
        "stroke-dasharray": isNum(geo.uncertainty_m) ? null : "4 3",
      }),
    );
    if (fresh) grp.append(s("circle", { cx: f1(x), cy: f1(y), r: 7, stroke: c, class: "marker-fresh" }));
    grp.append(s("circle", { cx: f1(x), cy: f1(y), r: 4.5, fill: c, stroke: "#fff", "stroke-width": 1.5 }));
    if (id === selectedMarker) {
      grp.append(s("circle", { cx: f1(x), cy: f1(y), r: f1(Math.max(r, 8) + 4), class: "marker-sel" }));
      grp.append(s("text", { class: "map-text bold", x: f1(x + Math.max(r, 8) + 7), y: f1(y + 4) }, label));
    }
    g.append(grp);
  }

  let raf = 0;
  let lastSig = "";
  const signature = () =>
    [...drones.values()].map((d) => (isStale(d) ? "s" : "l")).join("") + "|" + [...markers.values()].filter(isFresh).length;
  function scheduleRender() {
    if (!raf) raf = requestAnimationFrame(render);
  }

  function render() {
    raf = 0;
    const rect = svg.getBoundingClientRect();
    view.w = rect.width;
    view.h = rect.height;
    if (!view.w || !view.h) return;
    if (view.auto) fit();
    const g = { tiles: s("g"), grid: s("g"), footprints: s("g"), tracks: s("g"), markers: s("g"), drones: s("g"), overlay: s("g") };
    drawTiles(g.tiles);
    const step = drawGrid(g.grid);
    for (const d of drones.values()) {
      if (layers.footprints) drawFootprint(g.footprints, d);
      if (layers.tracks) drawTrack(g.tracks, d);
      drawDrone(g.drones, d);
    }
    if (layers.detections) {
      const list = [...markers.values()].sort((a, b) => a.ev.capture_time - b.ev.capture_time);
      for (const m of list) if (m.ev.event_id !== selectedMarker) drawMarker(g.markers, m);
      if (markers.has(selectedMarker)) drawMarker(g.markers, markers.get(selectedMarker));
    }
    drawOverlay(g.overlay, step);
    svg.replaceChildren(...Object.values(g));
    lastSig = signature();
    $("map-empty").hidden = drones.size + markers.size > 0;
  }

  // ------------------------------------------------------------------------------------ interaction
  function setAuto(on) {
    view.auto = on;
    fitBtn.classList.toggle("on", on);
    fitBtn.setAttribute("aria-pressed", String(on));
  }

  function zoomAt(px, py, factor) {
    const [wx, wy] = fromScreen(px, py);
    view.k = Math.min(200, Math.max(1e-4, view.k * factor));
    view.cx = wx - (px - view.w / 2) / view.k;
    view.cy = wy + (py - view.h / 2) / view.k;
    setAuto(false);
    scheduleRender();
  }

  const local = (e) => {
    const r = svg.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };

  function hitTest(pt) {
    let best = null;
    for (const d of drones.values()) {
      const p = pose(d.t);
      if (!p) continue;
      const [x, y] = screenOf(p.lat, p.lon);
      const dist = Math.hypot(x - pt.x, y - pt.y);
      if (dist <= 22 && (!best || dist < best.dist)) best = { kind: "drone", id: d.key, dist };
    }
    if (best) return best;
    if (!layers.detections) return null;
    for (const m of markers.values()) {
      const [x, y] = screenOf(m.ev.geo.lat, m.ev.geo.lon);
      const dist = Math.hypot(x - pt.x, y - pt.y);
      if (dist <= Math.max(11, Math.min(markerRadius(m), 30)) && (!best || dist < best.dist)) best = { kind: "marker", id: m.ev.event_id, dist };
    }
    return best;
  }

  const pointers = new Map();
  let gesture = null;
  svg.addEventListener("pointerdown", (e) => {
    svg.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, local(e));
    gesture = { moved: pointers.size > 1 || (gesture && gesture.moved), x: e.clientX, y: e.clientY };
  });
  svg.addEventListener("pointermove", (e) => {
    const pt = local(e);
    if (origin && e.pointerType === "mouse") {
      const [la, lo] = unproject(...fromScreen(pt.x, pt.y));
      readout.hidden = false;
      readout.textContent = SE.fmtLatLon(la, lo);
    }
    const prev = pointers.get(e.pointerId);
    if (!prev || !gesture) return;
    if (pointers.size === 1) {
      if (!gesture.moved && Math.abs(e.clientX - gesture.x) + Math.abs(e.clientY - gesture.y) > 5) gesture.moved = true;
      if (gesture.moved) {
        view.cx -= (pt.x - prev.x) / view.k;
        view.cy += (pt.y - prev.y) / view.k;
        setAuto(false);
        svg.classList.add("dragging");
        scheduleRender();
      }
    } else if (pointers.size === 2) {
      const other = [...pointers.entries()].find(([id]) => id !== e.pointerId)[1];
      const before = Math.hypot(prev.x - other.x, prev.y - other.y);
      const after = Math.hypot(pt.x - other.x, pt.y - other.y);
      if (before > 10) zoomAt((pt.x + other.x) / 2, (pt.y + other.y) / 2, after / before);
    }
    pointers.set(e.pointerId, pt);
  });
  const endPointer = (e, tap) => {
    pointers.delete(e.pointerId);
    svg.classList.remove("dragging");
    if (tap && gesture && !gesture.moved && pointers.size === 0) {
      const hit = hitTest(local(e));
      if (hit && hit.kind === "drone") selectDrone(hit.id);
      else if (hit) openEvent(hit.id);
    }
    if (pointers.size === 0) gesture = null;
  };
  svg.addEventListener("pointerup", (e) => endPointer(e, true));
  svg.addEventListener("pointercancel", (e) => endPointer(e, false));
  svg.addEventListener("pointerleave", () => (readout.hidden = true));
  svg.addEventListener(
    "wheel",
    (e) => {
      e.preventDefault();
      const pt = local(e);
      zoomAt(pt.x, pt.y, Math.exp(-e.deltaY * 0.0015));
    },
    { passive: false },
  );
  $("zoom-in").addEventListener("click", () => zoomAt(view.w / 2, view.h / 2, 1.6));
  $("zoom-out").addEventListener("click", () => zoomAt(view.w / 2, view.h / 2, 1 / 1.6));
  fitBtn.addEventListener("click", () => {
    setAuto(true);
    scheduleRender();
  });
  for (const [id, key] of [["show-tracks", "tracks"], ["show-footprints", "footprints"], ["show-detections", "detections"]]) {
    $(id).addEventListener("change", (e) => {
      layers[key] = e.target.checked;
      scheduleRender();
    });
  }
  new ResizeObserver(scheduleRender).observe(svg);

  // -------------------------------------------------------------------------------------------- HUD
  const GPS_FIX = ["no GPS", "no fix", "2D fix", "3D fix", "DGPS", "RTK float", "RTK fixed"];
  const COMPASS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  const compass = (deg) => COMPASS[Math.round((((deg % 360) + 360) % 360) / 45) % 8];
  const deg = (v) => (isNum(v) ? `${v.toFixed(1)}°` : DASH);
  const ago = (t) => h("span", { class: "ago", dataset: { t: isNum(t) ? String(t) : "" } }, SE.fmtAgo(t));

  function fillDroneSelect() {
    const keys = [...drones.keys()].sort();
    droneSelect.replaceChildren(...keys.map((k) => h("option", { value: k }, `${drones.get(k).stream} (${drones.get(k).node})`)));
    if (!keys.length) droneSelect.append(h("option", { value: "" }, "No drone yet"));
    droneSelect.value = selectedDrone;
  }

  function selectDrone(key) {
    selectedDrone = key;
    droneSelect.value = key;
    renderHud();
    scheduleRender();
  }
  droneSelect.addEventListener("change", () => selectDrone(droneSelect.value));

  function renderHud() {
    const d = drones.get(selectedDrone);
    if (!d) {
      hud.replaceChildren(h("p", { class: "muted" }, "No drone telemetry yet."));
      return;
    }
    const t = d.t;
    const klv = t.source === "klv";
    const v = t.vehicle || {};
    const se = t.sensor || {};
    const p = pose(t) || {};
    const gps = () => {
      if (!isNum(v.gps_fix_type) && !isNum(v.satellites)) return [DASH];
      const fix = isNum(v.gps_fix_type) ? GPS_FIX[v.gps_fix_type] || `type ${v.gps_fix_type}` : "fix ?";
      const parts = [fix, isNum(v.satellites) ? `${v.satellites} sats` : null, isNum(v.h_acc_m) ? `±${v.h_acc_m.toFixed(1)} m` : null];
      return [parts.filter(Boolean).join(" · "), { class: v.gps_fix_type >= 3 ? "good" : "bad" }];
    };
    const battery = () => {
      if (!isNum(v.battery_voltage_v) && !isNum(v.battery_remaining_pct)) return [DASH];
      const parts = [isNum(v.battery_remaining_pct) ? `${Math.round(v.battery_remaining_pct)} %` : null, isNum(v.battery_voltage_v) ? `${v.battery_voltage_v.toFixed(1)} V` : null];
      const pct = v.battery_remaining_pct;
      return [parts.filter(Boolean).join(" · "), { class: "big " + (isNum(pct) ? (pct < 20 ? "bad" : pct < 35 ? "warn" : "") : "") }];
    };
    const link = () => {
      if (klv) return [DASH];
      if (v.link_ok === true) return ["OK", { class: "good big" }];
      return ["LOST", { class: "bad big" }];
    };
    const gimbal = klv
      ? [isNum(se.sensor_rel_el_deg) ? `el ${deg(se.sensor_rel_el_deg)}` : null, isNum(se.sensor_rel_az_deg) ? `az ${deg(se.sensor_rel_az_deg)} (rel.)` : null]
      : [isNum(v.gimbal_pitch_deg) ? `pitch ${deg(v.gimbal_pitch_deg)}` : null, isNum(v.gimbal_yaw_deg) ? `yaw ${deg(v.gimbal_yaw_deg)}${v.gimbal_yaw_frame ? ` (${v.gimbal_yaw_frame})` : ""}` : null];
    const hfov = klv ? se.hfov_deg : v.camera_hfov_deg;
    const vfov = klv ? se.vfov_deg : v.camera_vfov_deg;
    const roll = klv ? se.platform_roll_deg : v.roll_deg;
    const pitch = klv ? se.platform_pitch_deg : v.pitch_deg;
    const speed = v.groundspeed_mps;
    const rows = [
      ["Source", klv ? `KLV${se.standard ? " " + se.standard : ""}` : `MAVLink${isNum(v.system_id) ? " · system " + v.system_id : ""}${v.vehicle_type ? " · " + v.vehicle_type : ""}`],
      ["Position", SE.fmtLatLon(p.lat, p.lon), { class: "mono", id: "hud-position" }],
      ["Altitude AMSL", SE.fmtNum(klv ? se.sensor_alt_m : v.alt_amsl_m, 1, "m"), { class: "big", id: "hud-alt-amsl" }],
      ["Altitude rel.", SE.fmtNum(klv ? null : v.alt_rel_m, 1, "m"), { class: "big", id: "hud-alt-rel" }],
      ["Ground speed", isNum(speed) ? `${speed.toFixed(1)} m/s · ${(speed * 3.6).toFixed(0)} km/h` : DASH, { class: "big", id: "hud-speed" }],
      ["Vertical speed", SE.fmtNum(v.climb_mps, 1, "m/s")],
      ["Heading", isNum(p.heading) ? `${Math.round(p.heading)}° ${compass(p.heading)}` : DASH, { class: "big", id: "hud-heading" }],
      ["Roll / pitch", isNum(roll) || isNum(pitch) ? `${deg(roll)} / ${deg(pitch)}` : DASH],
      ["Battery", ...battery()],
      ["Flight mode", v.flight_mode || DASH, { class: "big", id: "hud-mode" }],
      ["Armed", v.armed === true ? "ARMED" : v.armed === false ? "disarmed" : DASH, { class: v.armed ? "warn big" : "", id: "hud-armed" }],
      ["GPS", ...gps()],
      ["Link", ...link()],
      ["Gimbal", gimbal.filter(Boolean).join(" · ") || DASH],
      ["Camera FOV", isNum(hfov) ? `${deg(hfov)} × ${deg(vfov)}` : DASH],
      klv ? ["Slant range", SE.fmtMetres(se.slant_range_m)] : null,
      ["Geolocation", SE.geoStatusText(t.geo_status)],
      ["Updated", ago(t.time)],
    ];
    const notes = [];
    if (offlineNodes.has(d.node)) notes.push(h("div", { class: "notice notice-warn" }, `Node ${d.node} is offline: last known state.`));
    hud.replaceChildren(
      ...notes,
      h(
        "dl",
        { class: "kv", id: "hud-values", dataset: { drone: d.key } },
        rows.filter(Boolean).map(([k, val, attrs]) => [h("dt", null, k), h("dd", attrs || null, val)]),
      ),
    );
  }

  // ------------------------------------------------------------------------------ detections list
  let listTimer = 0;
  function scheduleList() {
    if (!listTimer) listTimer = setTimeout(renderList, 200);
  }
  function renderList() {
    listTimer = 0;
    const items = [...markers.values()].sort((a, b) => b.ev.capture_time - a.ev.capture_time).slice(0, LIST_MAX);
    $("det-count").textContent = markers.size ? `(${markers.size} with position)` : "";
    detList.replaceChildren(
      ...items.map((m) =>
        h(
          "li",
          null,
          h(
            "button",
            { type: "button", class: m.ev.event_id === selectedMarker ? "selected" : null, dataset: { eventId: m.ev.event_id }, onclick: () => openEvent(m.ev.event_id, true) },
            h("span", { class: "chip-dot", style: { background: SE.labelColor(m.ev.label) } }),
            h("span", { class: "grow" }, h("strong", null, m.ev.label), ` ${SE.fmtScore(m.ev.top_score)} · ${m.ev.stream}`),
            h("span", { class: "muted small nowrap" }, `± ${SE.fmtMetres(m.ev.geo.uncertainty_m)} · `, ago(m.ev.capture_time)),
          ),
        ),
      ),
    );
    if (!items.length) detList.append(h("li", { class: "muted small" }, "No positioned detections yet."));
  }

  function openEvent(id, pan = false) {
    selectedMarker = id;
    const m = markers.get(id);
    if (pan && m) {
      const [x, y] = screenOf(m.ev.geo.lat, m.ev.geo.lon);
      if (x < 0 || y < 0 || x > view.w || y > view.h) {
        [view.cx, view.cy] = project(m.ev.geo.lat, m.ev.geo.lon);
        setAuto(false);
      }
    }
    detail.hidden = false;
    SE.renderEventDetail(detail, id, { onClose: closeEvent });
    scheduleRender();
    renderList();
  }
  function closeEvent() {
    selectedMarker = null;
    detail.hidden = true;
    detail.replaceChildren();
    scheduleRender();
    renderList();
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && selectedMarker && !document.querySelector(".lightbox")) closeEvent();
  });

  // ------------------------------------------------------------------------------------ data feeds
  let telemetryAllowed = true;
  async function loadTelemetry() {
    try {
      const list = await api("GET", "/api/telemetry");
      for (const t of list || []) onTelemetry(t, isNum(t.time) ? t.time : SE.nowS());
    } catch (err) {
      if (err.status === 403) {
        telemetryAllowed = false;
        hudNote.replaceChildren(h("div", { class: "notice notice-warn" }, `Your role (${session.role}) may not see drone telemetry; detections are still shown.`));
      } else {
        hudNote.replaceChildren(SE.errorBox(err));
      }
    }
    if (!drones.size) renderHud();
  }

  async function loadHistory() {
    let cursor = null;
    let found = 0;
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const p = new URLSearchParams({ limit: "200" });
      if (cursor) p.set("cursor", cursor);
      let r;
      try {
        r = await api("GET", `/api/events?${p}`);
      } catch {
        return;
      }
      for (const ev of r.items || []) {
        if (ev.geo) {
          found += 1;
          onEvent(ev, false);
        }
      }
      cursor = r.next_cursor;
      if (!cursor || found >= HISTORY_WANTED) break;
    }
    renderList();
  }

  SE.live.on("telemetry", (t) => {
    if (telemetryAllowed) onTelemetry(t, SE.nowS());
  });
  SE.live.on("event", (ev) => onEvent(ev, true));
  SE.live.on("availability", (m) => {
    if (m.state === "offline") offlineNodes.add(m.node);
    else offlineNodes.delete(m.node);
    renderHud();
    scheduleRender();
  });
  SE.live.onOpen((reconnect) => {
    if (reconnect) {
      loadTelemetry();
      loadHistory();
    }
  });

  // Once a second: ages in the HUD and list; redraw only when a drone went stale or a marker stopped pulsing.
  setInterval(() => {
    const now = SE.nowS();
    for (const el of document.querySelectorAll(".map-side .ago")) if (el.dataset.t) el.textContent = SE.fmtAgo(Number(el.dataset.t), now);
    if (signature() !== lastSig) scheduleRender();
  }, 1000);

  if (SE.config.tiles_url) {
    const att = $("attribution");
    att.textContent = SE.config.tiles_attribution || "";
    att.hidden = !att.textContent;
  }
  renderHud();
  renderList();
  scheduleRender();
  await Promise.all([loadTelemetry(), loadHistory()]);
  SE.live.start();
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
