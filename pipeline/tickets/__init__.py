"""The tickets stream: Freshdesk records -> normalized rows, clean text, deduped versions, thread summaries."""
