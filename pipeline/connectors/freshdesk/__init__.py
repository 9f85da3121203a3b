"""Freshdesk (API v2): an async client for ingest jobs and a simulator to run them against on loopback."""
