"""Rules stage: zones and lines in the picture or on the map, what objects do there, and the alerts it raises.

geometry (footpoints, shapes, sides) → objects (last sightings, filters) → membership (in/out of zones with min
time, min frames and inertia; time in zone) and crossing (line crossings, counts) → situations (the alert lifecycle
per rule kind) → stage (RulesStage: one per stream, rules swapped between frames)."""
