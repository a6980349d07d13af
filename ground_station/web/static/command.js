/* Cross-command on the pilot map: the station's vehicles (link, mode, armed, position, gimbal), "look at"
   planning by a click on the map or from an alert (/map?look=lat,lon&alert=ID), the plan drawn (route,
   standoff point, target) until the pilot confirms it, then the flight's progress and every command with
   the vehicle's answer. Take off, hold, return-to-launch and abort are one click each. Only pilots and
   admins see the buttons; the server checks again. */
"use strict";

(async function () {
  const { h, api, isNum, DASH, byId: $ } = SE;
  const card = $("command-card");
  const map = SE.pilotMap || (await new Promise((ok) => document.addEventListener("se:map", () => ok(SE.pilotMap), { once: true })));
  const mayCommand = ["pilot", "admin"].includes(SE.session.role);
  const layer = L.layerGroup().addTo(map);
  const params = new URLSearchParams(location.search);
  let pendingLook = null;
  if (params.get("look")) {
    const [lat, lon] = params.get("look").split(",").map(Number);
    if (Number.isFinite(lat) && Number.isFinite(lon)) pendingLook = { lat, lon, alert_id: params.get("alert") || null, label: params.get("label") || null };
  }
  let vehicles = [];
  let selected = "";
  let plan = null; // the plan waiting for the pilot's confirmation
  let picking = false; // the next map click plans a look there
  let notice = null; // {kind, text} shown above the buttons
  let busy = false;
  let lastCommands = []; // the answers of the latest request
  const trails = new Map(); // vehicle → its recent positions, as the station reported them (bounded)
  const MAX_TRAIL = 300;

  const vehicle = () => vehicles.find((v) => v.name === selected);
  const fmtM = (m) => (isNum(m) ? `${m < 1000 ? Math.round(m) : (m / 1000).toFixed(2) + " k"} m` : DASH);

  function say(kind, text) {
    notice = { kind, text };
    render();
  }

  async function send(method, path, body) {
    busy = true;
    render();
    try {
      const r = await api(method, path, body);
      if (r && r.commands) {
        lastCommands = r.commands;
        say(r.ok ? "info" : "error", r.ok ? "Accepted by the vehicle." : refusal(r.commands));
      }
      return r;
    } catch (err) {
      say("error", err.message || String(err));
      return null;
    } finally {
      busy = false;
      await poll();
    }
  }

  function refusal(commands) {
    const bad = commands.find((c) => c.result !== "accepted" && c.result !== "in progress");
    if (!bad) return "Done.";
    const why = bad.result === "link lost" ? "the link to the vehicle is lost" : bad.result === "timeout" ? "no answer from the vehicle" : `the vehicle answered ${bad.result}`;
    return `${bad.command}: ${why}${bad.detail ? ` (${bad.detail})` : ""}. Nothing was retried.`;
  }

  async function makePlan(look) {
    const v = vehicle();
    if (!v) return;
    plan = null;
    try {
      plan = await api("POST", `/api/vehicles/${encodeURIComponent(v.name)}/plans`, look);
      notice = { kind: "info", text: `Plan ready: check the route on the map, then confirm.` };
    } catch (err) {
      notice = { kind: "error", text: err.message || String(err) };
    }
    render();
    draw();
  }

  map.on("click", (e) => {
    if (!picking) return;
    picking = false;
    makePlan({ lat: e.latlng.lat, lon: e.latlng.lng });
  });

  // ------------------------------------------------------------------------------------------ drawing
  let fittedTo = ""; // what the view was last fitted to: a vehicle's first position, a plan, a flight
  function fitOnce(key, points) {
    if (key === fittedTo || !points.length) return;
    fittedTo = key;
    map.fitBounds(L.latLngBounds(points).pad(0.35), { maxZoom: 18, animate: false });
  }

  function draw() {
    layer.clearLayers();
    const located = vehicles.filter((v) => v.position);
    document.getElementById("map-empty").classList.toggle("covered", located.length > 0);
    const v0 = vehicle();
    const flight = v0 && v0.flight && ["flying", "arrived", "held"].includes(v0.flight.state) ? v0.flight.plan : null;
    const shownPlan = plan || flight;
    if (shownPlan) {
      fitOnce(`plan:${shownPlan.id}`, [...shownPlan.route.map((p) => [p.lat, p.lon]), [shownPlan.target.lat, shownPlan.target.lon]]);
    } else if (v0 && v0.position && !fittedTo) {
      const p = v0.position;
      fitOnce(`vehicle:${v0.name}`, [[p.lat - 0.001, p.lon - 0.001], [p.lat + 0.001, p.lon + 0.001]]);
    }
    for (const v of vehicles) {
      if (!v.position) continue;
      const at = [v.position.lat, v.position.lon];
      const trail = trails.get(v.name) || [];
      if (trail.length > 1) layer.addLayer(L.polyline(trail, { color: "#17202b", weight: 1.5, opacity: 0.6, dashArray: "2 4", interactive: false }));
      const lost = v.link !== "ok";
      const marker = L.circleMarker(at, { radius: 8, color: lost ? "#b3261e" : "#17202b", weight: 2, fillColor: lost ? "#f2b8b5" : "#ffd166", fillOpacity: 1 });
      marker.bindTooltip(`${v.name}${lost ? " (link lost)" : ""}`, { permanent: true, direction: "right", className: "vehicle-label" });
      marker.on("add", () => marker.getElement().setAttribute("data-vehicle", v.name));
      marker.on("click", () => select(v.name));
      layer.addLayer(marker);
      const f = v.flight;
      if (f && ["flying", "arrived", "held"].includes(f.state)) {
        const route = L.polyline(f.plan.route.map((q) => [q.lat, q.lon]), { color: "#1f63d6", weight: 3 });
        route.on("add", () => route.getElement().setAttribute("data-route", v.name));
        layer.addLayer(route);
        drawTarget(f.plan, false);
      }
    }
    if (plan) {
      const route = L.polyline(plan.route.map((p) => [p.lat, p.lon]), { color: "#1f63d6", weight: 3, dashArray: "6 6" });
      route.on("add", () => route.getElement().setAttribute("data-plan-route", plan.vehicle));
      layer.addLayer(route);
      drawTarget(plan, true);
    }
  }

  function drawTarget(p, planned) {
    const target = L.circleMarker([p.target.lat, p.target.lon], { radius: 9, color: "#b3261e", weight: 3, fill: false });
    target.on("add", () => target.getElement().setAttribute("data-target", planned ? "planned" : "flight"));
    target.bindTooltip(p.target.label || (p.target.alert_id ? `alert ${p.target.alert_id}` : "target"), { direction: "top" });
    const standoff = L.circleMarker([p.standoff.lat, p.standoff.lon], { radius: 5, color: "#1f63d6", weight: 2, fillColor: "#fff", fillOpacity: 1 });
    standoff.on("add", () => standoff.getElement().setAttribute("data-standoff", p.vehicle));
    layer.addLayer(target);
    layer.addLayer(standoff);
  }

  // ------------------------------------------------------------------------------------------ the card
  function select(name) {
    selected = name;
    plan = null;
    render();
    draw();
  }

  function stateRows(v) {
    const linkText = { ok: "connected", lost: "LINK LOST", connecting: "connecting…" }[v.link] || v.link;
    const rows = [
      ["Link", h("span", { class: `badge ${v.link === "ok" ? "t-new" : "t-end"}`, id: "cmd-link" }, linkText)],
      ["Mode", h("span", { id: "cmd-mode" }, v.mode || DASH)],
      ["Armed", v.armed ? "yes" : "no"],
      ["Altitude", v.position ? `${v.position.alt_m.toFixed(1)} m` : DASH],
      ["Speed", `${v.ground_speed_m_s.toFixed(1)} m/s`],
      ["Camera", v.gimbal ? `pitch ${v.gimbal.pitch_deg}°, yaw ${v.gimbal.yaw_deg}°` : DASH],
    ];
    const f = v.flight;
    if (f) {
      const progress = f.state === "flying" ? `${fmtM(f.distance_to_standoff_m)} to go, ETA ${isNum(f.eta_s) ? Math.round(f.eta_s) + " s" : DASH}` : f.state;
      rows.push(["Look", h("span", { id: "cmd-flight" }, progress)]);
      if (f.seen) {
        const seen = f.seen.state === "confirmed" ? `confirmed by ${f.seen.vehicle} at ${SE.fmtTime(f.seen.time)} (${f.seen.label}, ${f.seen.distance_m} m off)` : `not seen by ${f.seen.vehicle}`;
        rows.push(["Result", h("span", { id: "cmd-seen" }, seen)]);
      }
    }
    if (v.messages && v.messages.length) rows.push(["Vehicle says", h("span", { class: "small" }, v.messages[v.messages.length - 1])]);
    return h("dl", { class: "kv", id: "cmd-state" }, rows.map(([k, val]) => [h("dt", null, k), h("dd", null, val)]));
  }

  function buttons(v) {
    if (!mayCommand) return h("p", { class: "muted small", id: "cmd-readonly" }, `Your role (${SE.session.role}) may watch the vehicles but not command them.`);
    const off = busy || v.link !== "ok";
    const alt = h("input", { type: "number", id: "cmd-alt", min: "2", max: "120", value: "20", class: "narrow", "aria-label": "Take-off altitude (m)" });
    return h(
      "div",
      { class: "cmd-buttons" },
      h("div", { class: "row" }, alt, h("button", { type: "button", id: "cmd-takeoff", disabled: off, onclick: () => send("POST", `/api/vehicles/${v.name}/takeoff`, { altitude_m: Number(alt.value) || 20 }) }, "Take off")),
      h("div", { class: "row" },
        h("button", { type: "button", id: "cmd-look", class: picking ? "on" : "", disabled: off, onclick: () => { picking = !picking; plan = null; say("info", picking ? "Click the point to look at on the map." : "Cancelled."); draw(); } }, picking ? "Click the map…" : "Look at a point"),
        h("button", { type: "button", id: "cmd-hold", disabled: off, onclick: () => send("POST", `/api/vehicles/${v.name}/hold`) }, "Hold"),
        h("button", { type: "button", id: "cmd-rtl", disabled: off, onclick: () => send("POST", `/api/vehicles/${v.name}/rtl`) }, "Return"),
        h("button", { type: "button", id: "cmd-abort", class: "btn-danger", disabled: busy || v.link !== "ok", onclick: () => send("POST", `/api/vehicles/${v.name}/abort`) }, "Abort"),
      ),
    );
  }

  function planBox() {
    if (!plan) return null;
    return h(
      "div",
      { class: "notice notice-info", id: "cmd-plan" },
      h("strong", null, `Send ${plan.vehicle} to look${plan.target.alert_id ? ` at alert ${plan.target.alert_id}` : ""}`),
      h("div", { class: "small" }, `${fmtM(plan.distance_m)} to a point ${plan.altitude_m} m above the target, ETA ${Math.round(plan.eta_s)} s; the camera will point at the target.`),
      h("div", { class: "row" },
        h("button", { type: "button", id: "cmd-confirm", class: "btn-primary", disabled: busy, onclick: async () => { const id = plan.id; const name = plan.vehicle; plan = null; draw(); await send("POST", `/api/vehicles/${name}/plans/${id}/confirm`); } }, "Confirm and send"),
        h("button", { type: "button", id: "cmd-cancel", onclick: () => { plan = null; say("info", "Plan dropped: nothing was sent."); draw(); } }, "Cancel"),
      ),
    );
  }

  function commandLog(v) {
    const items = (v.commands || []).slice(-6).reverse();
    if (!items.length) return null;
    return h(
      "ol",
      { class: "cmd-log small", id: "cmd-log" },
      items.map((c) => h("li", { class: c.result === "accepted" ? "ok" : "bad" }, `${SE.fmtTime(c.time)} ${c.command.replace("MAV_CMD_", "")}: ${c.result}${c.detail ? ` — ${c.detail}` : ""} (${c.actor})`)),
    );
  }

  function render() {
    const v = vehicle();
    const body = [h("h2", null, "Command")];
    if (!vehicles.length) {
      body.push(h("p", { class: "muted small" }, "No vehicle is configured at this station (command.vehicles)."));
      card.replaceChildren(...body);
      return;
    }
    body.push(
      h("div", { class: "field" }, h("select", { id: "cmd-vehicle", "aria-label": "Vehicle", onchange: (e) => select(e.target.value) }, vehicles.map((x) => h("option", { value: x.name, selected: x.name === selected }, x.name)))),
    );
    if (v) {
      body.push(stateRows(v));
      if (notice) body.push(h("div", { class: `notice notice-${notice.kind === "error" ? "error" : "info"}`, id: "cmd-notice", role: "status" }, notice.text));
      body.push(planBox(), buttons(v), commandLog(v));
    }
    card.replaceChildren(...body.filter(Boolean));
  }

  async function poll() {
    try {
      vehicles = await api("GET", "/api/vehicles");
    } catch (err) {
      if (err.status === 403) {
        card.hidden = true;
        clearInterval(timer);
        return;
      }
      say("error", err.message || String(err));
      return;
    }
    if (!selected && vehicles.length) selected = vehicles[0].name;
    for (const v of vehicles) {
      if (!v.position) continue;
      const trail = trails.get(v.name) || [];
      const last = trail[trail.length - 1];
      if (!last || last[0] !== v.position.lat || last[1] !== v.position.lon) trail.push([v.position.lat, v.position.lon]);
      trails.set(v.name, trail.slice(-MAX_TRAIL));
    }
    if (pendingLook && mayCommand) {
      const v = vehicle();
      if (v && v.link === "ok" && v.position) {
        const look = pendingLook;
        pendingLook = null;
        await makePlan(look);
      }
    }
    if (!busy) render();
    draw();
  }

  card.hidden = false;
  const timer = setInterval(poll, 1000);
  await poll();
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
