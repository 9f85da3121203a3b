"""Freshdesk (API v2): the async client ingest jobs use (its simulator is `simulators.freshdesk`)."""
