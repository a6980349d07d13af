/* Live wall: every stream the edge nodes relay through this station, each played over WebRTC (WHEP).
   Each tile shows its glass-to-glass latency: the station's data channel gives the RTP timestamp ↔
   capture time reference (frames are stamped in 90 kHz from their capture times, so one pair maps
   them all); requestVideoFrameCallback tells when each RTP timestamp is shown; a clock ping corrects for the offset between this browser's clock and the station's.
   A tile whose stream goes down says so over the frozen picture and resumes by itself.
   Boxes: a stream the edge burns them into needs nothing here. A passthrough stream (the camera's own H.264,
   forwarded unchanged) sends each frame's boxes on the data channel (`video_boxes`, keyed by capture time);
   in requestVideoFrameCallback the shown frame's RTP timestamp gives its capture time, and that frame's boxes are
   drawn on a canvas over the video, so the boxes always belong to the picture on screen. */
"use strict";

(async function () {
  const { h, api, isNum } = SE;
  const session = await SE.init("live");

  const wall = document.getElementById("wall");
  const empty = document.getElementById("wall-empty");
  const summary = document.getElementById("wall-summary");
  const notice = document.getElementById("notice");
  const tiles = new Map(); // "node/stream" → Tile
  window.SmartEyeLive = { tiles }; // read-only handle for the end-to-end tests (frame rate, frame timing)
  const LATENCY_WINDOW = 30; // frames in the median
  const STALL_MS = 3000; // no frame shown for this long while "live": treat as down
  const CLOCK_SYNC_MS = 10000;
  const BOX_FRAMES = 120; // frames of boxes kept waiting for their frame to be shown (~4 s at 30 fps)
  const DRAWN_LOG = 300; // frames drawn, kept for the end-to-end tests (what was drawn on which frame)
  const SAME_FRAME_S = 0.002; // a shown frame's capture time (from RTP) and its boxes' agree within 1/90 kHz
  const nowS = () => (performance.timeOrigin + performance.now()) / 1000;
  let iceServers = [];
  try {
    iceServers = await api("GET", "/api/video/ice-servers"); // STUN/TURN for browsers behind NAT
  } catch (err) {
    notice.replaceChildren(SE.errorBox(err));
  }

  function median(values) {
    if (!values.length) return null;
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  function waitForIce(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState === "complete") {
          pc.removeEventListener("icegatheringstatechange", done);
          resolve();
        }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, ms); // non-trickle WHEP: send what was gathered so far
    });
  }

  class Tile {
    constructor(info) {
      this.info = info;
      this.key = `${info.node}/${info.stream}`;
      this.pc = null;
      this.resource = null;
      this.retries = 0;
      this.retryTimer = null;
      this.timing = null; // {rtp, capture, rate}: the RTP timestamp ↔ capture time reference (edge clock, s)
      this.latencies = [];
      this.offset = 0; // station clock − this browser's clock (s)
      this.bestRtt = Infinity;
      this.frames = 0;
      this.lastFrameAt = 0;
      this.remote = { state: "waiting", reason: null };
      this.connection = "new";
      this.boxFrames = []; // [{capture, width, height, boxes}] in arrival order (capture order)
      this.drawn = []; // [{capture, boxes}]: what was drawn over which shown frame (bounded)
      this.hasBoxes = false; // the canvas has something on it

      this.video = h("video", { class: "tile-video", autoplay: true, playsinline: true, muted: true });
      this.video.muted = true; // autoplay needs it; there is no audio anyway
      this.canvas = h("canvas", {
        class: "tile-boxes",
        "aria-hidden": "true",
        style: { position: "absolute", inset: "0", width: "100%", height: "100%", pointerEvents: "none" },
      });
      this.badge = h("span", { class: "badge tile-state" }, "connecting");
      this.latencyEl = h("span", { class: "tile-latency", title: "Glass-to-glass: capture at the edge → shown here" });
      this.metaEl = h("span", { class: "tile-meta muted small" });
      this.reasonEl = h("span", { class: "tile-reason" });
      this.overlay = h(
        "div",
        { class: "tile-overlay", role: "status" },
        h("strong", { class: "tile-overlay-title" }, "Connecting…"),
        this.reasonEl,
        h("span", { class: "small" }, "This tile resumes by itself."),
      );
      this.el = h(
        "figure",
        {
          class: "tile card",
          tabindex: "0",
          dataset: { node: info.node, stream: info.stream, state: "connecting", frames: "0" },
          onclick: () => toggleFocus(this),
          onkeydown: (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), toggleFocus(this)),
        },
        h("div", { class: "tile-media" }, this.video, this.canvas, this.overlay),
        h(
          "figcaption",
          { class: "tile-caption" },
          h("span", { class: "tile-name" }, h("strong", null, info.stream), h("span", { class: "muted" }, ` · ${info.node}`)),
          this.badge,
          this.latencyEl,
          this.metaEl,
        ),
      );
      this.onFrame = this.onFrame.bind(this);
      this.video.requestVideoFrameCallback(this.onFrame);
      this.connect();
    }

    async connect() {
      this.close(false);
      this.connection = "connecting";
      this.timing = null; // a new session has its own RTP timestamps
      this.boxFrames = [];
      const pc = new RTCPeerConnection({ iceServers });
      this.pc = pc;
      pc.addTransceiver("video", { direction: "recvonly" });
      const channel = pc.createDataChannel("smarteye");
      channel.onmessage = (e) => this.onMessage(e.data);
      channel.onopen = () => this.syncClock(channel);
      pc.ontrack = (e) => {
        this.video.srcObject = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
      };
      pc.onconnectionstatechange = () => {
        if (this.pc !== pc) return;
        this.connection = pc.connectionState;
        if (pc.connectionState === "connected") this.retries = 0;
        if (["failed", "closed"].includes(pc.connectionState)) this.retry();
        if (pc.connectionState === "disconnected") {
          // Often transient (a lost packet burst): give ICE a few seconds to recover on its own.
          setTimeout(() => this.pc === pc && pc.connectionState !== "connected" && this.retry(), 5000);
        }
      };
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await waitForIce(pc, 2000);
        const res = await fetch(this.info.whep, {
          method: "POST",
          headers: { "Content-Type": "application/sdp", "X-CSRF-Token": session.csrf_token },
          credentials: "same-origin",
          body: pc.localDescription.sdp,
        });
        if (res.status === 401) return location.assign(SE.loginUrl());
        if (!res.ok) throw new Error(`WHEP ${res.status}: ${(await res.text()).slice(0, 200)}`);
        const resource = new URL(res.headers.get("Location"), location.href).href;
        if (this.pc !== pc) {
          // This tile moved on (reconnected or closed) while the offer was answered: end that session now.
          fetch(resource, { method: "DELETE", headers: { "X-CSRF-Token": session.csrf_token }, credentials: "same-origin" }).catch(() => {});
          return;
        }
        this.resource = resource;
        await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      } catch (err) {
        if (this.pc !== pc) return;
        this.remote = { state: "down", reason: err.message || String(err) };
        this.retry();
      }
    }

    retry() {
      if (this.retryTimer) return;
      const delay = Math.min(10000, 1000 * 2 ** this.retries++);
      this.connection = "reconnecting";
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.connect();
      }, delay);
    }

    close(final) {
      if (this.resource) {
        fetch(this.resource, {
          method: "DELETE",
          headers: { "X-CSRF-Token": session.csrf_token },
          credentials: "same-origin",
          keepalive: true,
        }).catch(() => {});
        this.resource = null;
      }
      if (this.pc) {
        const pc = this.pc;
        this.pc = null;
        pc.close();
      }
      if (final && this.retryTimer) clearTimeout(this.retryTimer);
    }

    syncClock(channel) {
      const ping = () => {
        if (channel.readyState !== "open") return;
        channel.send(JSON.stringify({ kind: "clock", client: nowS() }));
        setTimeout(ping, this.bestRtt === Infinity || this.bestRtt > 0.05 ? 1000 : CLOCK_SYNC_MS);
      };
      ping();
    }

    onMessage(text) {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (msg.kind === "video_frame") {
        this.timing = { rtp: msg.rtp_timestamp, capture: msg.capture_time, rate: msg.clock_rate || 90000 };
      } else if (msg.kind === "video_boxes") {
        this.boxFrames.push({ capture: msg.capture_time, width: msg.width, height: msg.height, boxes: msg.boxes });
        if (this.boxFrames.length > BOX_FRAMES) this.boxFrames.shift();
      } else if (msg.kind === "video_state") {
        this.remote = { state: msg.state, reason: msg.reason };
        if (isNum(msg.width)) Object.assign(this.info, { width: msg.width, height: msg.height, fps: msg.fps });
        render(this);
      } else if (msg.kind === "clock") {
        const now = nowS();
        const rtt = now - msg.client;
        if (rtt >= 0 && rtt <= this.bestRtt * 1.5) {
          this.bestRtt = Math.min(this.bestRtt, rtt);
          this.offset = msg.server - (msg.client + rtt / 2);
        }
      }
    }

    onFrame(_now, meta) {
      this.frames = meta.presentedFrames;
      this.lastFrameAt = performance.now();
      const ref = this.timing;
      if (ref && isNum(meta.rtpTimestamp)) {
        // One reference pair maps every frame: capture = ref.capture + (rtp − ref.rtp) / 90 kHz (32-bit wrap).
        let ticks = (meta.rtpTimestamp - ref.rtp) >>> 0;
        if (ticks >= 2 ** 31) ticks -= 2 ** 32;
        const capture = ref.capture + ticks / ref.rate;
        const shown = (performance.timeOrigin + meta.expectedDisplayTime) / 1000 + this.offset;
        this.latencies.push((shown - capture) * 1000);
        if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
        this.drawBoxes(capture);
      } else if (this.hasBoxes) {
        this.clearBoxes(); // no timing yet: nothing can be matched to this frame
      }
      this.video.requestVideoFrameCallback(this.onFrame);
    }

    /* The boxes of the frame captured at `capture` (this frame's), over the video's picture (object-fit: contain). */
    drawBoxes(capture) {
      let frame = null;
      for (let i = this.boxFrames.length - 1; i >= 0; i--) {
        if (Math.abs(this.boxFrames[i].capture - capture) <= SAME_FRAME_S) {
          frame = this.boxFrames[i];
          this.boxFrames.splice(0, i); // older frames will not be shown any more
          break;
        }
      }
      if (!frame) {
        if (this.hasBoxes) this.clearBoxes(); // never another frame's boxes
        return;
      }
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const cw = Math.round(canvas.clientWidth * ratio);
      const ch = Math.round(canvas.clientHeight * ratio);
      if (canvas.width !== cw || canvas.height !== ch) Object.assign(canvas, { width: cw, height: ch });
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, cw, ch);
      const scale = Math.min(cw / frame.width, ch / frame.height);
      const dx = (cw - frame.width * scale) / 2;
      const dy = (ch - frame.height * scale) / 2;
      const X = (x) => dx + x * scale;
      const Y = (y) => dy + y * scale;
      const font = Math.max(10, Math.round(12 * ratio));
      ctx.lineWidth = Math.max(1, 2 * ratio);
      ctx.font = `${font}px sans-serif`;
      ctx.textBaseline = "top";
      for (const box of frame.boxes) {
        ctx.strokeStyle = box.colour;
        ctx.beginPath();
        if (box.corners) {
          box.corners.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
          ctx.closePath();
        } else {
          ctx.rect(X(box.x1), Y(box.y1), (box.x2 - box.x1) * scale, (box.y2 - box.y1) * scale);
        }
        ctx.stroke();
        if (box.label) {
          const width = ctx.measureText(box.label).width + 6;
          const top = Y(box.y1) - font - 4 >= 0 ? Y(box.y1) - font - 4 : Y(box.y1);
          ctx.fillStyle = box.colour;
          ctx.fillRect(X(box.x1), top, width, font + 4);
          ctx.fillStyle = "#fff";
          ctx.fillText(box.label, X(box.x1) + 3, top + 2);
        }
      }
      this.hasBoxes = frame.boxes.length > 0;
      this.drawn.push({ capture, boxes: frame.boxes });
      if (this.drawn.length > DRAWN_LOG) this.drawn.shift();
    }

    clearBoxes() {
      this.canvas.getContext("2d").clearRect(0, 0, this.canvas.width, this.canvas.height);
      this.hasBoxes = false;
    }

    get state() {
      const stalled = performance.now() - this.lastFrameAt > STALL_MS;
      if (this.remote.state === "down") return "down";
      if (this.connection !== "connected") return this.connection === "reconnecting" ? "down" : "connecting";
      if (this.frames === 0) return "waiting";
      return stalled ? "down" : "live";
    }
  }

  const STATE_TEXT = { live: "live", down: "down", waiting: "waiting for video", connecting: "connecting" };
  const STATE_CLASS = { live: "ok", down: "bad", waiting: "info", connecting: "info" };

  function render(tile) {
    const state = tile.state;
    const latency = state === "live" ? median(tile.latencies) : null;
    const el = tile.el;
    el.dataset.state = state;
    el.dataset.frames = String(tile.frames);
    el.dataset.latencyMs = isNum(latency) ? latency.toFixed(0) : "";
    el.dataset.width = String(tile.video.videoWidth || "");
    el.dataset.height = String(tile.video.videoHeight || "");
    tile.badge.className = `badge tile-state ${STATE_CLASS[state]}`;
    tile.badge.textContent = STATE_TEXT[state];
    tile.latencyEl.textContent = isNum(latency) ? `${latency.toFixed(0)} ms` : "";
    const size = tile.video.videoWidth ? `${tile.video.videoWidth}×${tile.video.videoHeight}` : "";
    const fps = isNum(tile.info.fps) && tile.info.fps > 0 ? `${tile.info.fps.toFixed(1)} fps` : "";
    tile.metaEl.textContent = [size, fps].filter(Boolean).join(" · ");
    const down = state === "down";
    tile.overlay.hidden = state === "live";
    tile.overlay.querySelector(".tile-overlay-title").textContent = down
      ? "Stream down"
      : state === "waiting"
        ? "Waiting for video…"
        : "Connecting…";
    tile.reasonEl.textContent = down ? tile.remote.reason || "No video is arriving." : "";
  }

  function toggleFocus(tile) {
    const focused = wall.querySelector(".tile.focused");
    if (focused) focused.classList.remove("focused");
    const enlarge = focused !== tile.el;
    tile.el.classList.toggle("focused", enlarge);
    wall.classList.toggle("has-focus", enlarge);
    if (enlarge) tile.el.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const focused = wall.querySelector(".tile.focused");
    if (focused) focused.classList.remove("focused");
    wall.classList.remove("has-focus");
  });

  async function refresh() {
    try {
      const streams = await api("GET", "/api/video/streams");
      notice.replaceChildren();
      for (const info of streams) {
        const key = `${info.node}/${info.stream}`;
        const tile = tiles.get(key);
        if (tile) {
          Object.assign(tile.info, { fps: info.fps, width: info.width, height: info.height });
        } else {
          const created = new Tile(info);
          tiles.set(key, created);
          wall.append(created.el);
        }
      }
      empty.hidden = tiles.size > 0;
    } catch (err) {
      notice.replaceChildren(SE.errorBox(err));
    }
  }

  window.addEventListener("pagehide", () => tiles.forEach((tile) => tile.close(true)));
  window.addEventListener("pageshow", (e) => e.persisted && tiles.forEach((tile) => tile.connect())); // back from bfcache
  function renderAll() {
    tiles.forEach(render);
    const live = [...tiles.values()].filter((t) => t.state === "live").length;
    summary.textContent = tiles.size ? `${live} of ${tiles.size} streams live` : "";
  }

  setInterval(renderAll, 500);
  setInterval(refresh, 3000);
  await refresh();
})();
