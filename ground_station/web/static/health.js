/* Health: every edge node (online/offline) and its streams (state, reason, fps, drops, reconnects,
   latency), loaded from /api/nodes and kept current by status/availability messages. */
"use strict";

(async function () {
  const { h, api, isNum } = SE;
  await SE.init("health");

  const nodesBox = document.getElementById("nodes");
  const notice = document.getElementById("notice");
  const nodes = new Map(); // node → {node, state, time, streams: Map(stream → status)}
  const STALE_S = 120; // a status older than this is shown as stale

  function ensureNode(name) {
    if (!nodes.has(name)) nodes.set(name, { node: name, state: "online", time: null, streams: new Map() });
    return nodes.get(name);
  }

  async function load() {
    try {
      const list = await api("GET", "/api/nodes");
      nodes.clear();
      for (const n of list || []) {
        nodes.set(n.node, { ...n, streams: new Map((n.streams || []).map((s) => [s.stream, s])) });
      }
      notice.replaceChildren();
      render();
    } catch (err) {
      notice.replaceChildren(SE.errorBox(err));
    }
  }

  const ago = (t) => h("span", { class: "ago", dataset: { t: isNum(t) ? String(t) : "" } }, SE.fmtAgo(t));

  function streamRow(s, nodeOnline) {
    const notLive = s.state !== "live";
    const lastSeen = isNum(s.last_seen) ? s.last_seen : s.time;
    const stale = nodeOnline && isNum(lastSeen) && SE.nowS() - lastSeen > STALE_S;
    const dropPct = s.frames > 0 && isNum(s.dropped) ? ` (${((100 * s.dropped) / s.frames).toFixed(1)} %)` : "";
    const res = isNum(s.width) && isNum(s.height) ? `${s.width}×${s.height}` : null;
    return h(
      "tr",
      { dataset: { stream: s.stream, state: s.state } },
      h(
        "td",
        { "data-label": "Stream" },
        h("div", null, h("div", { class: "stream-name" }, s.stream), h("div", { class: "stream-src" }, [s.source_kind, res, s.url].filter(Boolean).join(" · "))),
      ),
      h(
        "td",
        { "data-label": "State" },
        h(
          "div",
          null,
          h("span", { class: `badge s-${s.state}` }, s.state),
          stale ? h("span", { class: "badge warn stale", title: "no status for a while" }, "stale") : null,
          notLive && s.reason ? h("div", { class: "reason" + (s.state === "reconnecting" || s.state === "connecting" ? " warn" : "") }, s.reason) : null,
        ),
      ),
      h("td", { class: "num", "data-label": "FPS in / processed" }, `${SE.fmtNum(s.fps, 1)} / ${SE.fmtNum(s.processed_fps, 1)}`),
      h("td", { class: "num", "data-label": "Frames / processed" }, `${SE.fmtInt(s.frames)} / ${SE.fmtInt(s.processed)}`),
      h("td", { class: "num", "data-label": "Dropped" }, SE.fmtInt(s.dropped) + dropPct),
      h("td", { class: "num", "data-label": "Reconnects" }, SE.fmtNum(s.reconnects)),
      h("td", { class: "num", "data-label": "Latency" }, SE.fmtNum(s.latency_ms, 0, "ms")),
      h("td", { class: "num", "data-label": "Last frame" }, ago(s.last_frame_time)),
      h("td", { class: "num", "data-label": "Last status" }, ago(lastSeen)),
    );
  }

  function nodeCard(n) {
    const online = n.state === "online";
    const streams = [...n.streams.values()].sort((a, b) => a.stream.localeCompare(b.stream));
    return h(
      "section",
      { class: `card node ${online ? "online" : "offline"}`, dataset: { node: n.node } },
      h(
        "div",
        { class: "node-head" },
        h("h2", null, n.node),
        h("span", { class: `badge s-${online ? "online" : "offline"}` }, n.state),
        h("span", { class: "muted small" }, online ? "since " : "offline since ", isNum(n.time) ? SE.fmtTime(n.time) : "—"),
        !online && streams.length ? h("span", { class: "muted small" }, "· stream states below are the last known") : null,
      ),
      streams.length
        ? h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { class: "data responsive" },
              h(
                "thead",
                null,
                h(
                  "tr",
                  null,
                  h("th", null, "Stream"),
                  h("th", null, "State"),
                  h("th", { class: "num" }, "FPS in / proc."),
                  h("th", { class: "num" }, "Frames / proc."),
                  h("th", { class: "num" }, "Dropped"),
                  h("th", { class: "num" }, "Reconnects"),
                  h("th", { class: "num" }, "Latency"),
                  h("th", { class: "num" }, "Last frame"),
                  h("th", { class: "num" }, "Last status"),
                ),
              ),
              h("tbody", null, streams.map((s) => streamRow(s, online))),
            ),
          )
        : h("p", { class: "muted" }, "No streams reported."),
    );
  }

  function summary() {
    const all = [...nodes.values()];
    const online = all.filter((n) => n.state === "online").length;
    const counts = {};
    for (const n of all) for (const s of n.streams.values()) counts[s.state] = (counts[s.state] || 0) + 1;
    const streamText = Object.entries(counts)
      .sort()
      .map(([k, v]) => `${v} ${k}`)
      .join(", ");
    return `${all.length} node${all.length === 1 ? "" : "s"}, ${online} online${streamText ? " · streams: " + streamText : ""}`;
  }

  let raf = 0;
  function render() {
    raf = 0;
    const sorted = [...nodes.values()].sort((a, b) => a.node.localeCompare(b.node));
    nodesBox.replaceChildren(...sorted.map(nodeCard));
    document.getElementById("empty").hidden = nodes.size > 0;
    document.getElementById("summary").textContent = summary();
  }
  const scheduleRender = () => {
    if (!raf) raf = requestAnimationFrame(render);
  };

  // "12 s ago" texts age in place, without rebuilding the tables.
  setInterval(() => {
    const now = SE.nowS();
    for (const el of nodesBox.querySelectorAll(".ago")) {
      if (el.dataset.t) el.textContent = SE.fmtAgo(Number(el.dataset.t), now);
    }
  }, 1000);

  SE.live.on("status", (m) => {
    const n = ensureNode(m.node);
    n.streams.set(m.stream, { ...(n.streams.get(m.stream) || {}), ...m, last_seen: SE.nowS() });
    scheduleRender();
  });
  SE.live.on("availability", (m) => {
    const n = ensureNode(m.node);
    n.state = m.state;
    n.time = isNum(m.time) ? m.time : SE.nowS();
    scheduleRender();
  });
  SE.live.onOpen((reconnect) => {
    if (reconnect) load();
  });

  await load();
  SE.live.start();
})().catch((err) => {
  if (!(err instanceof SE.ApiError)) console.error(err);
});
