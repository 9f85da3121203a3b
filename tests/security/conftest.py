"""The attack suite: each test plays an attacker or a careless client against the real system (embedded broker,
api, worker, Freshdesk simulator) and asserts a clear 4xx in the route's shape and that nothing changed.

`live` (tests/conftest.py) is the system as a user starts it (`streamdesk up --simulator` on a fresh data dir),
shared by the tests that need real processes and HTTP on loopback."""
