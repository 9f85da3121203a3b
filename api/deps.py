"""What a route may depend on, as typed `Annotated` dependencies: settings and the api's services.

Routes never read `app.state`; they declare `store: StoreDep`, `publisher: PublisherDep`, … and FastAPI hands them
the parts `api/services.py` started. A test swaps any of them with `app.dependency_overrides[get_store] = …`.
Settings are set when the app is built (`create_app`), so they exist even when lifespan never ran.

The accessors are `async def` on purpose: FastAPI runs a plain `def` dependency on a worker thread, and two
thread hops per request for an attribute lookup cost the predictions benchmark ~25 % at p95 (measured).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from api.errors import ApiError
from api.ingest.jobs import Jobs
from api.ingest.schedules import IngestSchedules
from api.predicting import Predictor
from api.publish import Publisher
from api.search_service import SearchService
from api.services import Services
from pipeline.settings import Settings
from pipeline.storage.store import Store


async def settings_of(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


async def services_of(conn: HTTPConnection) -> Services:
    services = getattr(conn.app.state, "services", None)
    if services is None:  # lifespan has not started them (or already stopped them)
        raise ApiError(503, "the api is starting or stopping; try again", headers={"Retry-After": "1"})
    return services


ServicesDep = Annotated[Services, Depends(services_of)]


async def get_store(services: ServicesDep) -> Store:
    return services.store


async def get_publisher(services: ServicesDep) -> Publisher:
    return services.publisher


async def get_jobs(services: ServicesDep) -> Jobs:
    return services.jobs


async def get_ingest_schedules(services: ServicesDep) -> IngestSchedules:
    return services.ingest_schedules


async def get_search(services: ServicesDep) -> SearchService:
    return services.search


async def get_predictor(services: ServicesDep) -> Predictor:
    return services.predictor


SettingsDep = Annotated[Settings, Depends(settings_of)]
StoreDep = Annotated[Store, Depends(get_store)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
JobsDep = Annotated[Jobs, Depends(get_jobs)]
SearchDep = Annotated[SearchService, Depends(get_search)]
SchedulesDep = Annotated[IngestSchedules, Depends(get_ingest_schedules)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
