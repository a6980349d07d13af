/* The metric grid drawn under the data of a Leaflet map that has no tiles (the default: no external
   requests): lines every "nice" number of metres east and north of an origin, over the view and around it.
   Shared by the pilot map and the geofence editor. */
"use strict";

(function () {
  const R = 6378137; // the Web Mercator sphere
  const D2R = Math.PI / 180;

  /** The smallest 1, 2, 5 × 10^n at least v. */
  function niceAtLeast(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /** Screen pixels per metre at the centre of the view. */
  const pxPerMetre = (map) => (256 * 2 ** map.getZoom()) / (2 * Math.PI * R * Math.cos(map.getCenter().lat * D2R));

  /**
   * Redraw the grid into `layer` (a layer group on `pane`) for the map's view: about one line every 90 px,
   * every fifth one darker, starting at `origin` ({lat, lon, cos}; null: 0, 0). Returns the step in metres.
   */
  function drawMetricGrid(map, layer, origin, pane) {
    layer.clearLayers();
    const step = niceAtLeast(90 / pxPerMetre(map));
    const o = origin || { lat: 0, lon: 0, cos: 1 };
    const mLat = R * D2R; // metres per degree of latitude
    const mLon = R * D2R * o.cos; // … of longitude, at the origin
    const b = map.getBounds().pad(0.5);
    const [south, north] = [Math.max(b.getSouth(), -85), Math.min(b.getNorth(), 85)];
    const [i0, i1] = [Math.ceil(((b.getWest() - o.lon) * mLon) / step), Math.floor(((b.getEast() - o.lon) * mLon) / step)];
    const [j0, j1] = [Math.ceil(((south - o.lat) * mLat) / step), Math.floor(((north - o.lat) * mLat) / step)];
    if (i1 - i0 + j1 - j0 > 400) return step;
    const line = (a, b, major) =>
      L.polyline([a, b], { pane, interactive: false, color: major ? "#a9b6c3" : "#c9d3dc", weight: major ? 1.2 : 1, className: major ? "grid-major" : "grid-minor" });
    for (let i = i0; i <= i1; i++) {
      const lon = o.lon + (i * step) / mLon;
      layer.addLayer(line([south, lon], [north, lon], i % 5 === 0));
    }
    for (let j = j0; j <= j1; j++) {
      const lat = o.lat + (j * step) / mLat;
      layer.addLayer(line([lat, b.getWest()], [lat, b.getEast()], j % 5 === 0));
    }
    return step;
  }

  SE.geoGrid = { drawMetricGrid, pxPerMetre, niceAtLeast };
})();
