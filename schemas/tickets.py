"""The tickets stream's wire contract: the `tickets.raw` envelope and the normalized rows built from it.

Every row carries its tenant, platform, domain, the platform's id (`source_id`, text) and `updated_at` (UTC);
`key` names the object (`{tenant}:{platform}:{kind}:{source_id}`) and `version_key` one version of it, so the
same version seen twice is one row and a newer `updated_at` replaces the row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, computed_field, model_validator

Platform = Literal["freshdesk"]
Kind = Literal["ticket", "conversation", "kb_category", "kb_folder", "kb_article", "attachment"]
Ident = Annotated[str, Field(min_length=1, max_length=128)]
AuthorRole = Literal["customer", "agent", "note"]


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


Utc = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def row_key(tenant: str, platform: str, kind: str, source_id: str) -> str:
    """The deterministic key of one platform object."""
    return f"{tenant}:{platform}:{kind}:{source_id}"


def version_of(key: str, updated_at: datetime) -> str:
    """The key of one version: the object's key and its UTC `updated_at` to the microsecond."""
    return f"{key}@{updated_at.astimezone(UTC).isoformat(timespec='microseconds')}"


class RawRecord(BaseModel):
    """One message on `tickets.raw` (or one element of a batch): a platform record as its API returned it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tenant: Ident
    platform: Platform
    domain: Annotated[str, Field(min_length=1, max_length=255)]
    kind: Kind
    record: dict[str, Any]
    job_id: Ident | None = None


class _Row(BaseModel):
    """Fields every normalized row has; `key` and `version_key` are derived, never taken from input."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    KIND: ClassVar[str]
    tenant: Ident
    platform: Platform
    domain: str
    source_id: Ident
    updated_at: Utc
    job_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        """A dumped row validates again: its derived fields are recomputed, not trusted."""
        derived = cls.model_computed_fields
        if isinstance(data, dict) and not derived.keys().isdisjoint(data):
            return {k: v for k, v in data.items() if k not in derived}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return row_key(self.tenant, self.platform, self.KIND, self.source_id)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version_key(self) -> str:
        return version_of(self.key, self.updated_at)


class Ticket(_Row):
    """A ticket; `status` is open|pending|resolved|closed (or status_<n>), `priority` low|medium|high|urgent."""

    KIND = "ticket"
    subject: str
    description_text: str
    description_stripped: str = Field(description="description without quoted reply history")
    status: str
    priority: str | None
    source: str | None
    type: str | None
    tags: list[str]
    requester_id: str | None
    responder_id: str | None
    group_id: str | None
    company_id: str | None
    spam: bool
    is_escalated: bool
    custom_fields: dict[str, Any]
    created_at: Utc
    due_by: Utc | None
    fr_due_by: Utc | None


class Conversation(_Row):
    """A reply or note on a ticket; `author_role` says who wrote it (customer, agent, or a note)."""

    KIND = "conversation"
    ticket_id: Ident
    body_text: str
    body_stripped: str = Field(description="body without quoted reply history")
    incoming: bool
    private: bool
    author_role: AuthorRole
    user_id: str | None
    source: str | None
    created_at: Utc

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ticket_key(self) -> str:
        return row_key(self.tenant, self.platform, "ticket", self.ticket_id)


class KbCategory(_Row):
    KIND = "kb_category"
    name: str
    description: str | None
    created_at: Utc | None


class KbFolder(_Row):
    KIND = "kb_folder"
    name: str
    description: str | None
    category_id: str | None
    visibility: str | None
    created_at: Utc | None


class KbArticle(_Row):
    """A knowledge-base article; `status` draft|published; names filled when the batch or record knew them."""

    KIND = "kb_article"
    title: str
    description_text: str
    status: str | None
    folder_id: str | None
    folder_name: str | None
    category_id: str | None
    category_name: str | None
    tags: list[str]
    created_at: Utc | None


class Attachment(_Row):
    """An attachment's metadata; the content fields are set when its bytes were fetched."""

    KIND = "attachment"
    name: str
    content_type: str | None
    size: int | None
    attachment_url: str | None = Field(description="without its query string: a pre-signed URL is a credential")
    parent_kind: Literal["ticket", "conversation"] | None
    parent_id: str | None
    ticket_id: str | None
    created_at: Utc | None
    content_sha256: str | None = None
    content_size: int | None = None
    content_text: str | None = Field(default=None, description="text-like content only, at most 64 Ki characters")
    content_truncated: bool = False
    content_skipped: str | None = Field(default=None, description="why the content was not fetched")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def version_key(self) -> str:
        """A fetched copy is a richer version of the same metadata: it must not be dropped as a duplicate."""
        base = version_of(self.key, self.updated_at)
        return f"{base}#{self.content_sha256[:16]}" if self.content_sha256 else base


class IntegratedObject(_Row):
    """One searchable document: a ticket with its thread merged in order, or a KB article (seed 000)."""

    KIND = "integrated_object"
    object_type: Literal["ticket", "kb_article"]
    title: str
    text: str
    summary: str | None
    status: str | None
    tags: list[str]
    conversation_count: int
    attachment_names: list[str]
    created_at: Utc | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        """The same key as the ticket or article it stands for."""
        return row_key(self.tenant, self.platform, self.object_type, self.source_id)


class TicketSummary(BaseModel):
    """An extractive summary of one ticket thread: top sentences in thread order, and how it was resolved."""

    model_config = ConfigDict(frozen=True)
    ticket_key: str
    subject: str
    status: str
    sentences: list[str]
    summary: str
    resolution: str | None
    updated_at: Utc


TABLE_MODELS: dict[str, type[_Row]] = {
    "tickets": Ticket,
    "conversations": Conversation,
    "kb_categories": KbCategory,
    "kb_folders": KbFolder,
    "kb_articles": KbArticle,
    "attachments": Attachment,
    "integrated_objects": IntegratedObject,
}
