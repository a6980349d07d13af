/* Drawing zones (polygons) and lines on an SVG laid over a picture or a map: click to add points, click the
   first point (or double-click, or Enter) to close a zone, two clicks make a line; drag a point to move it,
   drag a small mid-edge point to add one, drag the shape to move it all, right-click a point to delete it.
   A line shows its a→b direction, and which way across it counts as `in` (from the right of a→b to its
   left, as the edge counts it) and `out`.

   The editor knows nothing of the coordinates: an adapter maps a shape's points to screen pixels of the SVG
   and back (image: fractions of the frame; geo: lat/lon through the map), so one editor serves both spaces.
   SE.ShapeEditor(svg, adapter, {onChange(shapes), onSelect(id)}):
     adapter.toScreen(point) → [x, y]; adapter.fromScreen([x, y]) → point (clamped, rounded);
     adapter.backgroundClicks: true when the SVG itself takes the clicks that add points (image); else the
     owner calls editor.addPoint(screenXY) (a map takes the clicks, so it can still be panned). */
"use strict";

(function () {
  const { s } = SE;
  const CLOSE_PX = 12; // a click this near the first point closes the zone
  const COLORS = ["#ffb300", "#00b8d4", "#e040fb", "#76ff03", "#ff5252", "#448aff", "#ff6e40", "#64ffda"];

  SE.SHAPE_COLORS = COLORS;

  class ShapeEditor {
    constructor(svg, adapter, callbacks = {}) {
      this.svg = svg;
      this.adapter = adapter;
      this.cb = callbacks;
      this.shapes = []; // {id, type: "zone" | "line", name, points: [[a, b], …], color}
      this.selected = null;
      this.tool = "select"; // select | zone | line
      this.drawing = null; // points of the shape being drawn
      this.cursor = null; // screen point under the pointer while drawing
      this.drag = null;
      this.readOnly = false;
      svg.classList.add("shape-editor");
      svg.addEventListener("pointermove", (e) => this.onMove(e));
      svg.addEventListener("pointerup", (e) => this.onUp(e));
      svg.addEventListener("pointercancel", (e) => this.onUp(e));
      svg.addEventListener("contextmenu", (e) => e.preventDefault());
      svg.addEventListener("dblclick", (e) => {
        if (this.tool === "zone" && this.drawing) {
          e.preventDefault();
          this.finish();
        }
      });
    }

    // ------------------------------------------------------------------------------------ public
    setShapes(shapes) {
      this.shapes = shapes.map((sh) => ({ ...sh, points: sh.points.map((p) => [...p]) }));
      if (this.selected && !this.shapes.some((sh) => sh.id === this.selected)) this.selected = null;
      this.render();
    }

    select(id) {
      this.selected = id;
      this.render();
    }

    setTool(tool) {
      if (this.readOnly && tool !== "select") return;
      this.tool = tool;
      this.drawing = tool === "select" ? null : [];
      this.cursor = null;
      this.svg.dataset.tool = tool;
      this.render();
    }

    setReadOnly(readOnly) {
      this.readOnly = readOnly;
      if (readOnly) this.setTool("select");
    }

    /** Add a point where the user clicked (screen pixels of the SVG) to the shape being drawn. */
    addPoint(xy) {
      if (!this.drawing) return;
      const pts = this.drawing;
      if (this.tool === "zone" && pts.length >= 3) {
        const first = this.adapter.toScreen(pts[0]);
        if (Math.hypot(first[0] - xy[0], first[1] - xy[1]) <= CLOSE_PX) {
          this.finish();
          return;
        }
      }
      const p = this.adapter.fromScreen(xy);
      const last = pts[pts.length - 1];
      if (last && last[0] === p[0] && last[1] === p[1]) return; // a double click's second click
      pts.push(p);
      if (this.tool === "line" && pts.length === 2) this.finish();
      else this.render();
    }

    /** Close the shape being drawn (a zone needs 3 points, a line 2): hands it to onCreate. */
    finish() {
      const pts = this.drawing;
      const type = this.tool;
      if (!pts || (type === "zone" && pts.length < 3) || (type === "line" && pts.length < 2)) return false;
      this.drawing = null;
      this.tool = "select";
      this.svg.dataset.tool = "select";
      if (this.cb.onCreate) this.cb.onCreate(type, pts);
      this.render();
      return true;
    }

    cancel() {
      if (this.drawing && this.drawing.length) {
        this.drawing = [];
        this.render();
        return;
      }
      this.setTool("select");
      if (this.cb.onToolDone) this.cb.onToolDone();
    }

    undoPoint() {
      if (this.drawing && this.drawing.length) {
        this.drawing.pop();
        this.render();
      }
    }

    /** The pointer moved over the surface (screen pixels of the SVG): the rubber band follows it. */
    hover(xy) {
      if (!this.drawing) return;
      this.cursor = xy;
      this.render();
    }

    get drawingCount() {
      return this.drawing ? this.drawing.length : 0;
    }

    // ---------------------------------------------------------------------------------- pointer
    local(e) {
      const r = this.svg.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    }

    onBackgroundDown(e) {
      if (e.button !== 0) return;
      if (this.tool !== "select") {
        this.addPoint(this.local(e));
      } else if (this.selected) {
        this.selected = null;
        this.render();
        if (this.cb.onSelect) this.cb.onSelect(null);
      }
    }

    startDrag(e, shape, index, mode) {
      if (e.button !== 0 || this.readOnly || this.tool !== "select") return;
      e.stopPropagation();
      e.preventDefault();
      this.svg.setPointerCapture(e.pointerId);
      const from = this.local(e);
      this.drag = { id: shape.id, index, mode, from, start: shape.points.map((p) => this.adapter.toScreen(p)), moved: false };
    }

    onMove(e) {
      const xy = this.local(e);
      if (this.drag) {
        const d = this.drag;
        const shape = this.shapes.find((sh) => sh.id === d.id);
        if (!shape) return;
        const dx = xy[0] - d.from[0];
        const dy = xy[1] - d.from[1];
        if (!d.moved && Math.hypot(dx, dy) < 2) return;
        d.moved = true;
        if (d.mode === "shape") shape.points = d.start.map(([x, y]) => this.adapter.fromScreen([x + dx, y + dy]));
        else shape.points[d.index] = this.adapter.fromScreen(xy);
        this.render();
        return;
      }
      this.hover(xy);
    }

    onUp(e) {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      if (this.svg.hasPointerCapture(e.pointerId)) this.svg.releasePointerCapture(e.pointerId);
      if (d.moved) this.changed();
      else if (d.mode === "shape" || d.mode === "vertex") this.pick(d.id);
    }

    pick(id) {
      if (this.selected !== id) {
        this.selected = id;
        this.render();
      }
      if (this.cb.onSelect) this.cb.onSelect(id);
    }

    changed() {
      if (this.cb.onChange) this.cb.onChange(this.shapes.map((sh) => ({ id: sh.id, points: sh.points.map((p) => [...p]) })));
    }

    // -------------------------------------------------------------------------------------- drawing
    render() {
      const svg = this.svg;
      const W = svg.clientWidth;
      const H = svg.clientHeight;
      const out = [defs()];
      if (this.adapter.backgroundClicks) {
        out.push(s("rect", { class: "se-bg", x: 0, y: 0, width: W, height: H, onpointerdown: (e) => this.onBackgroundDown(e) }));
      }
      const order = [...this.shapes].sort((a, b) => (a.id === this.selected) - (b.id === this.selected)); // the selected one on top
      for (const sh of order) out.push(this.shapeGroup(sh));
      if (this.drawing) out.push(this.drawingGroup());
      svg.replaceChildren(...out);
    }

    shapeGroup(sh) {
      const sel = sh.id === this.selected;
      const pts = sh.points.map((p) => this.adapter.toScreen(p));
      const g = s("g", { class: `se-shape se-${sh.type}${sel ? " selected" : ""}`, dataset: { shape: sh.name, id: sh.id } });
      g.style.setProperty("--c", sh.color);
      const str = pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
      const down = (e) => {
        if (this.tool !== "select" || e.button !== 0) return;
        if (this.readOnly) this.pick(sh.id);
        else this.startDrag(e, sh, -1, "shape");
      };
      if (sh.type === "zone") {
        g.append(s("polygon", { class: "se-body", points: str, onpointerdown: down }));
        const c = centroid(pts);
        g.append(s("text", { class: "se-label", x: c[0].toFixed(1), y: c[1].toFixed(1), "text-anchor": "middle" }, sh.name));
      } else {
        const [a, b] = pts;
        g.append(s("line", { class: "se-hit", x1: a[0], y1: a[1], x2: b[0], y2: b[1], onpointerdown: down }));
        g.append(s("line", { class: "se-body", x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
        g.append(s("polygon", { class: "se-arrowhead", points: arrowhead(a, b) }));
        g.append(...directionMarks(a, b, sh.name));
      }
      if (sel && !this.readOnly) {
        if (sh.type === "zone") {
          pts.forEach((p, i) => {
            const q = pts[(i + 1) % pts.length];
            g.append(
              s("circle", {
                class: "se-mid", cx: ((p[0] + q[0]) / 2).toFixed(1), cy: ((p[1] + q[1]) / 2).toFixed(1), r: 5,
                onpointerdown: (e) => {
                  sh.points.splice(i + 1, 0, this.adapter.fromScreen([(p[0] + q[0]) / 2, (p[1] + q[1]) / 2]));
                  this.startDrag(e, sh, i + 1, "vertex");
                },
              }),
            );
          });
        }
        pts.forEach((p, i) => {
          g.append(
            s("circle", {
              class: "se-vertex", cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 7, dataset: { index: String(i) },
              onpointerdown: (e) => this.startDrag(e, sh, i, "vertex"),
              oncontextmenu: (e) => {
                e.preventDefault();
                if (sh.type === "zone" && sh.points.length > 3) {
                  sh.points.splice(i, 1);
                  this.render();
                  this.changed();
                }
              },
            }),
          );
        });
      }
      return g;
    }

    drawingGroup() {
      const pts = this.drawing.map((p) => this.adapter.toScreen(p));
      const g = s("g", { class: `se-drawing se-${this.tool}` });
      const all = this.cursor ? [...pts, this.cursor] : pts;
      if (all.length >= 2) {
        g.append(s("polyline", { class: "se-body", points: all.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ") }));
      }
      if (this.tool === "zone" && pts.length >= 2 && this.cursor) {
        const [x, y] = pts[0];
        g.append(s("line", { class: "se-closing", x1: this.cursor[0], y1: this.cursor[1], x2: x, y2: y }));
      }
      if (this.tool === "line" && pts.length === 1 && this.cursor) g.append(...directionMarks(pts[0], this.cursor, ""));
      pts.forEach(([x, y], i) =>
        g.append(s("circle", { class: "se-vertex" + (i === 0 && this.tool === "zone" && pts.length >= 3 ? " se-first" : ""), cx: x.toFixed(1), cy: y.toFixed(1), r: i === 0 ? 8 : 6 })),
      );
      return g;
    }
  }

  function defs() {
    return s(
      "defs",
      null,
      s("marker", { id: "se-dir", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 Z", class: "se-dirhead" })),
    );
  }

  /** a and b labels, and the crossing arrow at the middle: `in` goes from the right of a→b to its left. */
  function directionMarks(a, b, name) {
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1;
    // Screen y points down: the left of a→b is (dy, -dx) — the side `in` crosses to.
    const lx = dy / len;
    const ly = -dx / len;
    const m = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const r = 26;
    const from = [m[0] - lx * r, m[1] - ly * r];
    const to = [m[0] + lx * r, m[1] + ly * r];
    const out = [
      s("line", { class: "se-dir", x1: from[0].toFixed(1), y1: from[1].toFixed(1), x2: to[0].toFixed(1), y2: to[1].toFixed(1), "marker-end": "url(#se-dir)", "marker-start": "url(#se-dir)" }),
      s("text", { class: "se-dirlabel", x: (m[0] + lx * (r + 12)).toFixed(1), y: (m[1] + ly * (r + 12) + 4).toFixed(1), "text-anchor": "middle" }, "in"),
      s("text", { class: "se-dirlabel", x: (m[0] - lx * (r + 14)).toFixed(1), y: (m[1] - ly * (r + 14) + 4).toFixed(1), "text-anchor": "middle" }, "out"),
      s("text", { class: "se-end", x: (a[0] - (dx / len) * 12).toFixed(1), y: (a[1] - (dy / len) * 12 + 4).toFixed(1), "text-anchor": "middle" }, "a"),
      s("text", { class: "se-end", x: (b[0] + (dx / len) * 14).toFixed(1), y: (b[1] + (dy / len) * 14 + 4).toFixed(1), "text-anchor": "middle" }, "b"),
    ];
    if (name) out.push(s("text", { class: "se-label", x: (m[0] - lx * (r + 30)).toFixed(1), y: (m[1] - ly * (r + 30) + 4).toFixed(1), "text-anchor": "middle" }, name));
    return out;
  }

  /** The a→b arrow's head at b, in the shape's colour (a marker would not take the colour of its line). */
  function arrowhead(a, b) {
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
    const ux = (b[0] - a[0]) / len;
    const uy = (b[1] - a[1]) / len;
    const L = 16;
    const W = 7;
    const base = [b[0] - ux * L, b[1] - uy * L];
    return [b, [base[0] - uy * W, base[1] + ux * W], [base[0] + uy * W, base[1] - ux * W]].map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  }

  function centroid(pts) {
    let x = 0;
    let y = 0;
    for (const p of pts) {
      x += p[0];
      y += p[1];
    }
    return [x / pts.length, y / pts.length];
  }

  SE.ShapeEditor = ShapeEditor;
})();
