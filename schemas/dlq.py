"""The `<topic>.dlq` record (docs/architecture.md "Topics"): what failed, where it came from, and the original bytes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeadLetterRecord(BaseModel):
    error: str = Field(description="why the message was rejected")
    topic: str = Field(description="source topic")
    partition: int
    offset: int
    index: int | None = Field(description="position in a JSON-array batch, else null")
    timestamp: int = Field(description="when it was rejected, epoch milliseconds")
    value_b64: str | None = Field(description="the original bytes (first 64 KiB), base64")
    size: int | None = Field(default=None, description="original size when over 64 KiB")
    sha256: str | None = Field(default=None, description="hash of the whole original when over 64 KiB")
