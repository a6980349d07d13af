"""Users, roles, browser sessions and API tokens of the ground station."""
