/* Site configuration of the web UI. The ground station may serve its own version of this file;
   tiles_url null (the default) keeps the map fully offline: no request leaves the ground station.
   Example: tiles_url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png" */
window.SMARTEYE_CONFIG = window.SMARTEYE_CONFIG || { tiles_url: null };
