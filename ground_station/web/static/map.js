/* Pilot map on Leaflet (vendored in static/vendor/leaflet): works offline. Without tiles it draws a
   metric grid (local metres around the first position seen) under the data, with a scale bar and a
   north arrow; map tiles only when window.SMARTEYE_CONFIG.tiles_url is set. Draws every drone
   (position + heading arrow), its bounded track, its camera footprint and the detections that carry
   `geo` (circle radius = 1-sigma uncertainty, at least 6 px). "Fit" follows the data until the user
   pans or zooms. A HUD shows the selected drone's state. */
"use strict";

(async function () {
  const { h, s, api, isNum, DASH, byId: $ } = SE;
  const session = await SE.init("map");

  const R = 6378137; // the Web Mercator sphere
  const D2R = Math.PI / 180;
  const MAX_TRACK = 600; // points per drone
  const TRACK_MAX_AGE_S = 3600;
  const MAX_MARKERS = 300;
  const HISTORY_PAGES = 3; // pages of /api/events read at start for positioned detections
  const HISTORY_WANTED = 100;
  const FRESH_S = 60; // a live detection pulses this long
  const DRONE_STALE_S = 30;
  const LIST_MAX = 30;
  const FIT_PADDING_PX = 56;
  const FIT_MIN_EXTENT_M = 80;
  const DRONE_COLORS = ["#1f63d6", "#e07b00", "#8e3bc4", "#00838f", "#c2185b", "#2a9d3c"];

  const hud = $("hud");
  const hudNote = $("hud-note");
  const droneSelect = $("drone-select");
  const detList = $("det-list");
  const detail = $("detail");
  const fitBtn = $("fit");
  const readout = $("readout");

  const drones = new Map(); // "node/stream" → {key, node, stream, t, track: [[lat, lon, time]], color, received, icon, marker, …}
  const markers = new Map(); // event_id → {ev, live, at, layer, look, z}
  const offlineNodes = new Set();
  const shown = { tracks: true, footprints: true, detections: true };
  let origin = null; // the first position seen: where the grid's lines start
  let auto = true; // the view follows the data
  let fitting = false; // the view is being moved by fit(), not by the user
  let selectedDrone = "";
  let selectedMarker = null;

  // -------------------------------------------------------------------------------------------- map
  const map = L.map("map", {
    zoomControl: false, // the page has its own buttons (+, −, Fit)
    attributionControl: false, // and its own attribution line
    zoomSnap: 0.25,
    wheelPxPerZoomLevel: 120,
    minZoom: 2,
    maxZoom: 24,
  }).setView([0, 0], 2);
  SE.pilotMap = map; // for command.js (vehicles, look plans), loaded after this script
  document.dispatchEvent(new Event("se:map"));
  map.createPane("grid").style.zIndex = 250; // over the tiles (200), under the data
  map.createPane("footprints").style.zIndex = 390; // under the tracks (overlay pane, 400)
  map.createPane("detections").style.zIndex = 590; // under the drones (marker pane, 600)
  const layers = {
    grid: L.layerGroup().addTo(map),
    footprints: L.layerGroup().addTo(map),
    tracks: L.layerGroup().addTo(map),
    detections: L.layerGroup().addTo(map),
    drones: L.layerGroup().addTo(map),
  };
  if (SE.config.tiles_url) {
    L.tileLayer(SE.config.tiles_url, {
      subdomains: SE.config.tiles_subdomains || "abc",
      maxNativeZoom: SE.config.tiles_max_zoom || 19,
      maxZoom: map.getMaxZoom(),
    }).addTo(map);
  }

  const remember = (lat, lon) => {
    if (!origin) origin = { lat, lon, cos: Math.cos(lat * D2R) };
  };
  /** Screen pixels per metre at the centre of the view. */
  const pxPerMetre = () => (256 * 2 ** map.getZoom()) / (2 * Math.PI * R * Math.cos(map.getCenter().lat * D2R));
  /** Tag a vector layer's SVG element (its element is made anew each time the layer is shown). */
  function tagged(layer, name, value) {
    layer.on("add", () => layer.getElement().setAttribute(name, value));
    return layer;
  }
  /** A marker drawn by an SVG built here, anchored at (0, 0) of that SVG. */
  const svgIcon = (...children) =>
    L.divIcon({ html: s("svg", { class: "map-icon", width: 1, height: 1 }, ...children), className: "map-icon-box", iconSize: [0, 0], iconAnchor: [0, 0] });

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
      const color = DRONE_COLORS[drones.size % DRONE_COLORS.length];
      d = { key, node: t.node, stream: t.stream, track: [], color, look: "" };
      d.marker = L.marker([0, 0], { icon: svgIcon(), keyboard: false }).on("click", () => selectDrone(key));
      d.trackLine = tagged(L.polyline([], { color, weight: 2.5, opacity: 0.75, lineJoin: "round", interactive: false }), "data-track", key);
      d.footprint = tagged(
        L.polygon([], { color, weight: 1.5, dashArray: "7 4", fillColor: color, fillOpacity: 0.13, interactive: false, pane: "footprints" }),
        "data-footprint",
        key,
      );
      layers.tracks.addLayer(d.trackLine);
      layers.footprints.addLayer(d.footprint);
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
      remember(p.lat, p.lon);
    }
    d.moved = true;
    if (!selectedDrone) selectDrone(key);
    else if (selectedDrone === key) renderHud();
    scheduleRender();
  }

  function isStale(d) {
    return offlineNodes.has(d.node) || !isNum(d.received) || SE.nowS() - d.received > DRONE_STALE_S;
  }

  // ------------------------------------------------------------------------------------ detections
  function onEvent(ev, live) {
    // An object's position fused over its track's life (edge/geo/fusion.py) is drawn when the edge sends one:
    // its circle (1-sigma) shrinks as fixes agree, e.g. as a drone closes in.
    if (ev && ev.geo_fused && isNum(ev.geo_fused.lat)) ev = { ...ev, geo: ev.geo_fused, geo_fix: ev.geo };
    const g = ev && ev.geo;
    if (!g || !isNum(g.lat) || !isNum(g.lon)) return;
    const old = markers.get(ev.event_id);
    if (old && old.ev.seq > ev.seq) return; // keep the latest position of the object
    const m = old || { look: "", z: null };
    Object.assign(m, { ev, live: live || (old && old.live), at: live ? SE.nowS() : old && old.at });
    if (!m.layer) {
      m.layer = L.marker([g.lat, g.lon], { icon: svgIcon(), pane: "detections", keyboard: false }).on("click", () => openEvent(ev.event_id));
      layers.detections.addLayer(m.layer);
    }
    m.layer.setLatLng([g.lat, g.lon]);
    markers.set(ev.event_id, m);
    remember(g.lat, g.lon);
    if (markers.size > MAX_MARKERS) {
      let oldest = null;
      for (const [id, o] of markers) if (!oldest || o.ev.capture_time < oldest[1]) oldest = [id, o.ev.capture_time];
      layers.detections.removeLayer(markers.get(oldest[0]).layer);
      markers.delete(oldest[0]);
    }
    scheduleRender();
    scheduleList();
  }

  const isFresh = (m) => m.live && isNum(m.at) && SE.nowS() - m.at < FRESH_S;
  const markerRadius = (m, k) => (isNum(m.ev.geo.uncertainty_m) ? Math.max(6, m.ev.geo.uncertainty_m * k) : 12);

  // ---------------------------------------------------------------------------------------- drawing
  const f1 = (v) => v.toFixed(1);
  function niceAtMost(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [5, 2, 1]) if (m * p <= v) return m * p;
    return p;
  }

  /** The view around everything shown (at least FIT_MIN_EXTENT_M across), as the data moves. */
  function fit() {
    const pts = [];
    for (const d of drones.values()) {
      const p = pose(d.t);
      if (p) pts.push([p.lat, p.lon]);
      const fp = shown.footprints && footprintOf(d.t);
      if (fp) pts.push(...fp);
      if (shown.tracks) pts.push(...d.track.slice(-200));
    }
    if (shown.detections) for (const m of markers.values()) pts.push([m.ev.geo.lat, m.ev.geo.lon]);
    if (!pts.length) return;
    const box = L.latLngBounds(pts.map(([la, lo]) => [la, lo]));
    const c = box.getCenter();
    const halfLat = Math.max((box.getNorth() - box.getSouth()) / 2, FIT_MIN_EXTENT_M / 2 / (R * D2R));
    const halfLon = Math.max((box.getEast() - box.getWest()) / 2, FIT_MIN_EXTENT_M / 2 / (R * D2R * Math.cos(c.lat * D2R)));
    fitting = true;
    try {
      map.fitBounds(
        [
          [c.lat - halfLat, c.lng - halfLon],
          [c.lat + halfLat, c.lng + halfLon],
        ],
        { padding: [FIT_PADDING_PX, FIT_PADDING_PX], animate: false },
      );
    } finally {
      fitting = false;
    }
  }

  /** The metric grid (geogrid.js) from the first position seen. */
  const drawGrid = () => SE.geoGrid.drawMetricGrid(map, layers.grid, origin, "grid");

  /** Scale bar (bottom left) for the view's scale, with the grid step beside it. */
  function drawScale(step) {
    const k = pxPerMetre();
    const len = niceAtMost(170 / k);
    $("scale-ruler").style.width = `${f1(len * k)}px`;
    $("scale-label").textContent = SE.fmtMetres(len);
    $("scale-grid").textContent = `grid ${SE.fmtMetres(step)}`;
  }

  let lastZoom = null;
  function onView() {
    drawScale(drawGrid());
    if (map.getZoom() !== lastZoom) {
      lastZoom = map.getZoom();
      if (!fitting) scheduleRender(); // marker radii are in pixels; render() redraws them after its own fit
    }
  }

  function drawDrone(d) {
    const p = pose(d.t);
    const sel = d.key === selectedDrone;
    if (!p) {
      layers.drones.removeLayer(d.marker);
      return;
    }
    const stale = isStale(d);
    const alt = altitudeOf(d.t);
    const look = [sel, stale, isNum(p.heading) ? f1(p.heading) : "", isNum(alt) ? Math.round(alt) : ""].join("|");
    if (d.moved) d.marker.setLatLng([p.lat, p.lon]);
    if (look !== d.look) {
      const grp = s("g", { class: "drone" + (stale ? " stale" : "") });
      grp.append(s("circle", { r: 22, class: "hit" }));
      if (sel) grp.append(s("circle", { r: 23, class: "halo" }));
      if (isNum(p.heading)) {
        grp.append(s("line", { x1: 0, y1: 0, x2: 0, y2: -42, stroke: d.color, "stroke-width": 2, "stroke-dasharray": "3 3", transform: `rotate(${f1(p.heading)})` }));
        grp.append(s("path", { d: "M0,-17 L11,12 L0,6 L-11,12 Z", fill: d.color, transform: `rotate(${f1(p.heading)})` }));
      } else {
        grp.append(s("circle", { r: 9, class: "body", fill: d.color }));
      }
      grp.append(s("text", { class: "map-text bold", x: 20, y: 2 }, d.stream));
      const sub = [isNum(alt) ? `${Math.round(alt)} m` : null, stale ? "stale" : null].filter(Boolean).join(" · ");
      if (sub) grp.append(s("text", { class: "map-text", x: 20, y: 17 }, sub));
      d.marker.setIcon(svgIcon(grp));
      d.look = look;
    }
    d.marker.setZIndexOffset(sel ? 1e6 : 0);
    layers.drones.addLayer(d.marker);
    d.marker.getElement().dataset.drone = d.key;
    if (d.moved) {
      const fp = footprintOf(d.t);
      d.footprint.setLatLngs(fp || []);
      d.trackLine.setLatLngs(d.track.length >= 2 ? d.track.map(([la, lo]) => [la, lo]) : []);
      d.moved = false;
    }
  }

  function drawMarker(m, k, rank) {
    const { geo, label, event_id: id } = m.ev;
    const r = markerRadius(m, k);
    const fresh = isFresh(m);
    const sel = id === selectedMarker;
    const look = [f1(r), fresh, sel, m.ev.seq, label, m.ev.top_score].join("|");
    if (look !== m.look) {
      const c = SE.labelColor(label);
      const grp = s("g", { class: "marker", "data-event-id": id, opacity: fresh || sel ? 1 : 0.7 });
      grp.append(s("title", null, `${label} ${SE.fmtScore(m.ev.top_score)} · ${SE.geoText(m.ev)} · ${SE.fmtTime(m.ev.capture_time)}`));
      grp.append(s("circle", { r: f1(Math.max(11, Math.min(r, 30))), class: "hit" }));
      grp.append(
        s("circle", {
          r: f1(r), fill: c, "fill-opacity": 0.16, stroke: c, "stroke-width": 1.5, class: "marker-area",
          "stroke-dasharray": isNum(geo.uncertainty_m) ? null : "4 3",
        }),
      );
      if (fresh) grp.append(s("circle", { r: 7, stroke: c, class: "marker-fresh" }));
      grp.append(s("circle", { r: 4.5, fill: c, stroke: "#fff", "stroke-width": 1.5 }));
      if (sel) {
        grp.append(s("circle", { r: f1(Math.max(r, 8) + 4), class: "marker-sel" }));
        grp.append(s("text", { class: "map-text bold", x: f1(Math.max(r, 8) + 7), y: 4 }, label));
      }
      m.layer.setIcon(svgIcon(grp));
      m.look = look;
    }
    const z = sel ? 1e8 : rank * 20000; // newer detections over older ones, the selected one over all
    if (z !== m.z) m.layer.setZIndexOffset((m.z = z));
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
    if (auto) fit();
    for (const d of drones.values()) drawDrone(d);
    const k = pxPerMetre();
    const list = [...markers.values()].sort((a, b) => a.ev.capture_time - b.ev.capture_time);
    list.forEach((m, rank) => drawMarker(m, k, rank));
    lastSig = signature();
    $("map-empty").hidden = drones.size + markers.size > 0;
  }

  // ------------------------------------------------------------------------------------ interaction
  function setAuto(on) {
    auto = on;
    fitBtn.classList.toggle("on", on);
    fitBtn.setAttribute("aria-pressed", String(on));
  }

  map.on("zoomend moveend", onView);
  map.on("dragstart", () => setAuto(false)); // the user moves the view: stop following
  map.on("zoomstart", () => fitting || setAuto(false));
  map.on("mousemove", (e) => {
    readout.hidden = false;
    readout.textContent = SE.fmtLatLon(e.latlng.lat, e.latlng.lng);
  });
  map.on("mouseout", () => (readout.hidden = true));
  $("zoom-in").addEventListener("click", () => {
    setAuto(false);
    map.zoomIn(0.75);
  });
  $("zoom-out").addEventListener("click", () => {
    setAuto(false);
    map.zoomOut(0.75);
  });
  fitBtn.addEventListener("click", () => {
    setAuto(true);
    scheduleRender();
  });
  for (const [id, key] of [["show-tracks", "tracks"], ["show-footprints", "footprints"], ["show-detections", "detections"]]) {
    $(id).addEventListener("change", (e) => {
      shown[key] = e.target.checked;
      if (shown[key]) map.addLayer(layers[key]);
      else map.removeLayer(layers[key]);
      scheduleRender();
    });
  }
  new ResizeObserver(() => {
    map.invalidateSize({ pan: false });
    scheduleRender();
  }).observe($("map"));

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
    if (pan && m && !map.getBounds().contains([m.ev.geo.lat, m.ev.geo.lon])) {
      setAuto(false);
      map.panTo([m.ev.geo.lat, m.ev.geo.lon], { animate: false });
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
      let r;
      try {
        r = await SE.fetchPage("/api/events", null, 200, cursor);
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
  onView();
  await Promise.all([loadTelemetry(), loadHistory()]);
  SE.live.start();
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
