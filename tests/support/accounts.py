"""Password hashing for tests that create users: argon2id with cheap parameters.

The product hashes with argon2-cffi's defaults (RFC 9106: 64 MiB, 3 passes, ~0.3 s a hash or a login,
checked by tests/ground_station/api/test_app.py); at that price a test that creates four users and logs in
a dozen times spends seconds hashing. The stored hash is argon2id all the same, and logins verify it.
"""

from __future__ import annotations

from argon2 import PasswordHasher

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192)
