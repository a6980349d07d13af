"""Cross-command: send a drone to look at what a camera saw, over MAVLink, with every answer shown."""
