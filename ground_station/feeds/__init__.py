"""Standard outputs for other tools: Cursor on Target for TAK/ATAK users, GeoJSON for GIS users."""
