"""`privacy.erasures`: a user erased for good; the materializer and `rebuild` skip their records from then on."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel


class Erasure(BaseModel):
    tenant: str
    user_id: str
    erased_at: AwareDatetime
