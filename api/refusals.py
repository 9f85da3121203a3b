"""What the api's services raise when they refuse or cannot do what was asked: domain errors, not HTTP answers.

The services (predicting, publishing, search, ingest jobs, the scheduler) know nothing about HTTP. A route lets
these propagate; `api/errors.py` maps each kind to its HTTP status, and to the platform error shape or seed
004's envelope and code according to the route, in one table (`REFUSALS`). The scheduler, which is no route,
catches `Refused` and records its seed-004 code (`api.errors.refusal`).
"""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """A service's refusal: a message for the caller and, optionally, details that say how to do better."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unavailable(Refused):
    """Something the request needs is down for now (the worker's embedder, …): retry after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after_s = retry_after_s


class BrokerUnavailable(Unavailable):
    """The broker did not take a message within the publish timeout."""

    def __init__(self, topic: str, reason: str, retry_after_s: int = 5) -> None:
        super().__init__(f"could not publish to {topic}: {reason}; retry shortly", retry_after_s)
        self.topic = topic


class NotEnoughData(Refused):
    """Too little of the user's data to predict from."""


class AlreadyRunning(Refused):
    """The user already has a prediction in progress."""
