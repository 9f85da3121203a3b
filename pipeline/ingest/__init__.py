"""Ingest jobs, worker side: a job's run (`jobs.py`) and its agents (`agents.py`), the total estimate, the end
marks that say a job's records are stored, and the Freshdesk client (`freshdesk/`). The api side is `api/ingest/`;
the wire models `schemas/ingest.py`; the tables and queries `pipeline/storage/ingest_sinks.py` and
`pipeline/storage/queries/ingest*.py`; the Freshdesk simulator `simulators/freshdesk/`."""
