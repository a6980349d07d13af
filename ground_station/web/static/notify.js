/* Alert notifications on every page, for supervisors and admins (the people who act on alerts): when an
   alert `start` arrives on the live socket, a browser notification, a short sound and an in-page toast.

   Browsers allow notifications and sound only after the user asked for them: the bell in the nav bar asks
   for notification permission and unlocks audio (a click is the gesture both need). Without permission
   the toast and the sound still come; the bell also mutes everything. The sound is synthesised (Web Audio
   oscillator), so there is no audio file. Loaded by app.js (SE.init) after the nav bar is drawn. */
"use strict";

(function () {
  const { h } = SE;
  const session = SE.session;
  if (!session || !["admin", "supervisor"].includes(session.role)) return;

  const PREF_KEY = "smarteye.alert-notifications"; // "on" | "off"
  const SOUNDED_KEY = "smarteye.alert-sounded"; // the last alert a tab beeped for: one beep for several tabs
  const TOAST_MS = { info: 8000, warning: 12000, critical: 30000 };
  const MAX_TOASTS = 4;
  const canNotify = "Notification" in window;
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  let audio = null;
  let enabled = localStorage.getItem(PREF_KEY) !== "off";

  // -------------------------------------------------------------------------------------- the bell
  const bell = h(
    "button",
    { type: "button", id: "alert-bell", class: "btn-quiet btn-small bell", dataset: { notifications: "0", sounds: "0", toasts: "0" } },
    SE.s("svg", { viewBox: "0 0 16 16", "aria-hidden": "true", class: "bell-icon" },
      SE.s("path", { d: "M8 1.5a1 1 0 0 1 1 1v.6A4.5 4.5 0 0 1 12.5 7.5v3l1.3 1.6a.5.5 0 0 1-.4.9H2.6a.5.5 0 0 1-.4-.9l1.3-1.6v-3A4.5 4.5 0 0 1 7 3.1v-.6a1 1 0 0 1 1-1zM6.3 14h3.4a1.7 1.7 0 0 1-3.4 0z" }),
      SE.s("path", { class: "bell-slash", d: "M2 2l12 12", stroke: "currentColor", "stroke-width": "1.6" }),
    ),
    h("span", { class: "bell-text" }),
  );
  const right = document.querySelector("#nav .nav-right");
  if (right) right.prepend(bell);

  function permission() {
    return canNotify ? Notification.permission : "unsupported";
  }

  function renderBell() {
    const p = permission();
    const state = !enabled ? "off" : p === "granted" ? "on" : "page";
    bell.dataset.state = state;
    bell.querySelector(".bell-text").textContent = state === "off" ? "Alerts muted" : "Alerts";
    const titles = {
      on: "Alert notifications on (browser notification, sound, toast). Click to mute.",
      page:
        p === "denied"
          ? "Alert notifications in this page only (sound, toast): this browser blocks notifications for the site. Click to mute."
          : "Alert notifications in this page only (sound, toast). Click to allow browser notifications too.",
      off: "Alert notifications muted. Click to turn them on.",
    };
    bell.title = titles[state];
    bell.setAttribute("aria-label", titles[state]);
    bell.setAttribute("aria-pressed", String(enabled));
  }

  function unlockAudio() {
    if (!AudioCtx) return;
    try {
      if (!audio) audio = new AudioCtx();
      if (audio.state === "suspended") audio.resume().catch(() => {});
    } catch {
      audio = null;
    }
  }

  bell.addEventListener("click", async () => {
    unlockAudio();
    if (!enabled) {
      enabled = true;
    } else if (permission() === "default") {
      try {
        await Notification.requestPermission();
      } catch {
        /* an old browser's callback form: the state is read again below */
      }
    } else {
      enabled = false;
    }
    localStorage.setItem(PREF_KEY, enabled ? "on" : "off");
    renderBell();
  });
  // Any gesture on the page lets audio play later (the browser's autoplay rule).
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlockAudio, { once: true, capture: true });
  window.addEventListener("storage", (e) => {
    if (e.key === PREF_KEY) {
      enabled = e.newValue !== "off";
      renderBell();
    }
  });

  // -------------------------------------------------------------------------------------- the sound
  /** Two rising tones (three for critical), ~0.2 s each, with a soft envelope (no clicks). */
  function beep(severity) {
    if (!audio || audio.state !== "running") return false;
    const tones = severity === "critical" ? [880, 1175, 880] : severity === "info" ? [660] : [740, 988];
    const t0 = audio.currentTime + 0.02;
    tones.forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      const start = t0 + i * 0.22;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.19);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.2);
    });
    return true;
  }

  // ------------------------------------------------------------------------------------- the toasts
  let toasts = null;
  function toastBox() {
    if (!toasts) {
      toasts = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "assertive" });
      document.body.append(toasts);
    }
    return toasts;
  }

  const count = (key) => (bell.dataset[key] = String(Number(bell.dataset[key]) + 1));
  const alertUrl = (a) => `/alerts?alert=${encodeURIComponent(a.alert_id)}`;

  function describe(a) {
    const where = a.zone ? `zone ${a.zone}` : a.line ? `line ${a.line}${a.direction && a.direction !== "any" ? ` (${a.direction})` : ""}` : "";
    const labels = {};
    for (const o of a.objects || []) labels[o.label] = (labels[o.label] || 0) + 1;
    const what = Object.entries(labels).map(([l, n]) => (n > 1 ? `${n} × ${l}` : l)).join(", ");
    return {
      title: `Alert (${a.severity}): ${a.rule}`,
      body: [`${SE.humanize(a.rule_kind)}${where ? " · " + where : ""}`, `${a.node} / ${a.stream}`, what].filter(Boolean).join(" · "),
    };
  }

  function toast(a) {
    const { title, body } = describe(a);
    const box = toastBox();
    const close = () => el.remove();
    const el = h(
      "div",
      { class: `toast sev-${a.severity}`, dataset: { alertId: a.alert_id } },
      h("div", { class: "toast-body" }, h("strong", { class: "toast-title" }, title), h("span", { class: "toast-text" }, body)),
      h("a", { href: alertUrl(a), class: "toast-open" }, "Open"),
      h("button", { type: "button", class: "icon-btn toast-close", "aria-label": "Dismiss", onclick: close }, "×"),
    );
    box.prepend(el);
    while (box.children.length > MAX_TOASTS) box.lastElementChild.remove();
    setTimeout(close, TOAST_MS[a.severity] || TOAST_MS.warning);
    count("toasts");
  }

  function notifyBrowser(a) {
    if (permission() !== "granted") return;
    const { title, body } = describe(a);
    try {
      const n = new Notification(title, {
        body,
        tag: `smarteye-alert-${a.alert_id}`, // several tabs: one notification
        icon: "/static/favicon.svg",
        requireInteraction: a.severity === "critical",
      });
      n.onclick = () => {
        window.focus();
        location.assign(alertUrl(a));
        n.close();
      };
      count("notifications");
    } catch (err) {
      console.warn("notification refused:", err); // e.g. a browser that allows them only from a service worker
    }
  }

  function soundOnce(a) {
    try {
      if (localStorage.getItem(SOUNDED_KEY) === a.alert_id) return; // another tab beeped already
      localStorage.setItem(SOUNDED_KEY, a.alert_id);
    } catch {
      /* storage unavailable: beep anyway */
    }
    if (beep(a.severity)) count("sounds");
  }

  SE.live.on("alert", (a) => {
    if (!enabled || !a || a.state !== "start" || !a.alert_id) return;
    toast(a);
    soundOnce(a);
    notifyBrowser(a);
  });
  renderBell();
  SE.live.start(); // pages that show no live data still need the socket for the alerts
})();
