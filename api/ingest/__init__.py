"""Ingest jobs, api side: the routes (`routes.py`: seed 000's /ingest endpoints), creating and steering jobs
(`jobs.py`), recurring collections (`schedules.py`) and `GET /ingest/metrics` (`metrics.py`). The worker side is
`pipeline/ingest/`."""
