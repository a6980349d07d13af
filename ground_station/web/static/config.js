/* Site configuration of the web UI. The ground station serves its own version of this file when its
   config sets `web.tiles_url` (and `web.tiles_attribution`); tiles_url null (the default) keeps the map
   fully offline: no request leaves the ground station. */
window.SMARTEYE_CONFIG = window.SMARTEYE_CONFIG || { tiles_url: null };
