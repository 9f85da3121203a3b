"""A Freshdesk API v2 simulator (not Freshdesk): see simulator.py; server.py runs it on a free loopback port."""
