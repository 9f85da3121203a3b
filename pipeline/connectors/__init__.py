"""Connectors to the helpdesk platforms the tickets stream ingests from."""
