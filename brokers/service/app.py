"""The FastAPI application factory: :func:`create_app`."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from brokers import __version__

from .api.deps import ServiceState
from .api.errors import install_handlers
from .api.management.history import history_router, trash_router
from .api.management.jobs import last_jobs_router
from .api.management.jobs import router as jobs_router
from .api.management.routes import router as management_router
from .api.openapi import install_openapi
from .api.v5.routes import router as v5_router
from .api.v6.routes import router
from .db import make_engine, make_sessions, upgrade
from .db.models import Workspace, WorkspaceHistory
from .jobs.maintenance import MaintenanceSettings
from .jobs.runner import RunnerSettings
from .jobs.system import JobSettings, JobSystem
from .security import SecretBox, TokenChecker, secret_paths
from .settings import Settings, hide_password
from .store.users import Actor, ensure_service_user

__all__ = ["create_app", "job_settings"]

log = logging.getLogger(__name__)

DESCRIPTION = """The workspace service of `brokers`: one registry of host, NFS and S3 workspaces, served in the three
dialects of its reference documents:

- **Scale v5** (`/v5/workspaces/`): `used_size`, `total_size`, `archived`, `json_config`;
- **Scale v6/v7** (`/v6/`, `/v7/` is an alias): create, edit, validate configurations;
- **workspace management** (`/workspaces`, `/dawgs/...`): filters, bulk edits, clone, owners, history with revert,
  trash with restore.

A workspace created through one is the same record through the others (management `name` = Scale `title`,
`disabled` = not `is_active`, `deleted` = in the trash, `disk_usage` = `used_size`, `archived` = `deprecated`,
`json_config` = `configuration`). Every single-workspace answer carries an `ETag` (its `version`); `If-Match` on
a change answers 412 when the workspace changed meanwhile.

Requests carry a token in `X-Access-Token`: a user's (`brokers users add NAME`) or a service token
(`--token`, acting as the built-in admin user `service`); reads need none with `--public-reads`. Workspaces are
changed by their owner or an admin. S3 secrets (keys, the user info of `endpoint_url`) are never returned (shown
as `************`), in history neither; sending a masked value back keeps the stored secret for the same store
and bucket. Validation and usage contact only the S3 endpoints the deployment allows, and sign only with the
configuration's own keys (unless the deployment lends its identity).
"""


def _reseal(box: SecretBox, sessions: sessionmaker[Session]) -> None:
    """Encrypt secrets stored in plain text (or under an older key) with the current key, history included."""
    if not box.enabled:
        return
    with sessions() as session, session.begin():
        for ws in session.scalars(select(Workspace).where(Workspace.configuration.is_not(None))):
            stored = ws.stored_configuration
            if any(True for _ in secret_paths(stored)):
                sealed = box.seal(stored)
                if sealed != stored:
                    ws.configuration = json.dumps(sealed)
        for item in session.scalars(select(WorkspaceHistory)):
            stored = item.state.get("configuration")
            if any(True for _ in secret_paths(stored)):
                sealed = box.seal(stored)
                if sealed != stored:
                    item.state = {**item.state, "configuration": sealed}


def _service_actor(sessions: sessionmaker[Session]) -> Actor:
    with sessions() as session, session.begin():
        return ensure_service_user(session)


def job_settings(settings: Settings, *, serving: bool = True) -> JobSettings:
    """The job system's settings: in the service (``serving``) schedules and periodic usage scans are on."""
    return JobSettings(
        queue_url=settings.queue_url, data_dir=settings.data_folder, workers=settings.job_workers,
        runner=RunnerSettings(lease=settings.job_lease, heartbeat=settings.job_heartbeat,
                              split_scans=(settings.queue_url or "").startswith(("redis", "unix"))),
        maintenance=MaintenanceSettings(tick=min(2.0, settings.job_lease / 3), resend_after=settings.job_resend,
                                        max_attempts=settings.job_attempts,
                                        usage_interval=settings.usage_interval if serving else 0.0,
                                        schedules=serving),
        smtp_url=settings.smtp_url, mail_from=settings.mail_from)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service: connect, migrate the database to the newest schema, wire the routes.

    Args:
        settings: How to run; defaults to :class:`Settings` (SQLite under ``$XDG_DATA_HOME``, no tokens).

    Returns:
        The ASGI app. Its lifespan starts and stops the job system (consumer threads, maintenance).
    """
    settings = settings or Settings()
    engine = make_engine(settings.url)
    upgrade(engine)
    sessions = make_sessions(engine)
    box = SecretBox(settings.secret_keys)
    _reseal(box, sessions)
    actor = _service_actor(sessions)
    jobs = JobSystem(sessions, box, settings.access_policy, actor, job_settings(settings))
    state = ServiceState(settings=settings, sessions=sessions, box=box, jobs=jobs,
                         tokens=TokenChecker(settings.tokens), service_actor=actor)
    if not state.tokens.configured:
        log.warning("no access tokens configured: the service is read-only%s",
                    "" if settings.public_reads else " and every read is refused (use --public-reads)")
    log.info("workspace service on %s; jobs on %s, %d run here at once", hide_password(settings.url),
             jobs.describe(), settings.job_workers)
    log.info("S3 endpoints it may contact: %s; configurations without keys are %s",
             ", ".join(settings.s3_endpoint_allow) or "none but AWS's own (--s3-endpoint-allow)",
             "signed with its own AWS identity" if settings.s3_ambient_credentials else "checked anonymously")
    log.info("NFS servers it may connect to itself: %s",
             ", ".join(settings.nfs_server_allow) or "none; mounted exports only (--nfs-server-allow)")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            engine.dispose()

    app = FastAPI(title="brokers workspace service", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.service = state
    install_handlers(app)
    install_openapi(app)
    app.include_router(v5_router, prefix="/v5")
    app.include_router(router, prefix="/v6")
    app.include_router(router, prefix="/v7")
    app.include_router(trash_router)  # before /workspaces/{workspace_id}, which would take "trash" for an id
    app.include_router(last_jobs_router)  # likewise "last_jobs"
    app.include_router(management_router)
    app.include_router(history_router)
    app.include_router(jobs_router)

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
