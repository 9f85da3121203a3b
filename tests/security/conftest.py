"""The attack suite: each test plays an attacker or a careless client against the real system (embedded broker,
api, worker, Freshdesk simulator) and asserts a clear 4xx in the route's shape and that nothing changed."""
