"""The ground station's web UI: static HTML pages and assets, no build step, served by `server.install`."""
