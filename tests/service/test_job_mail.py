"""Notification mails through a real SMTP server on 127.0.0.1 (aiosmtpd): who gets one, what it says, and what a
mail server that is down or refuses the login does (the job ends as it would, a warning without the password)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from brokers.service.db.models import Workspace
from tests.fixtures.s3 import free_port
from tests.fixtures.sqlite_only import database_url, shared_service  # noqa: F401 - SQLite only: storage tests
from tests.service.job_helpers import host_config, logs, run, workspace

TO = ["ops@example.test", "Lead.Person@example.test"]
PASSWORD = "Pa55-w0rd-n0t-in-logs"


def _failing_workspace(service: Any, tmp_path: Path, settings: dict[str, Any], name: str) -> int:
    """A workspace whose folder is gone once it is registered (and measured): its usage scans end in error."""
    root = tmp_path / name
    root.mkdir()
    ws = workspace(service, host_config(root), name=name)
    assert service.client.patch(f"/workspaces/{ws}", json={"settings": settings}).status_code == 200
    shutil.rmtree(root)
    return ws


def _stored_settings(service: Any, ws: int) -> dict[str, Any]:
    with service.app.state.service.sessions() as session:
        return dict(session.scalar(select(Workspace.settings).where(Workspace.id == ws)) or {})


def test_a_job_that_fails_is_mailed_to_the_notification_addresses(start_service, smtp_server, tmp_path) -> None:
    service = start_service(smtp_url=smtp_server.url, mail_from="jobs@brokers.test")
    ws = _failing_workspace(service, tmp_path, {"notification_emails": TO}, "Nightly imports")
    job = run(service, ws, "usage_scan")
    assert job["status"] == "error"
    [mail] = smtp_server.wait_for(1)
    assert mail.to == TO
    assert (mail.sender, mail.message["From"]) == ("jobs@brokers.test", "jobs@brokers.test")
    assert mail.subject == "[brokers] usage_scan of Nightly imports: error"
    [(_, error)] = [(level, text) for level, text in logs(service, ws, job["id"]) if level == "error"]
    assert "WorkspaceNotFound" in error
    assert f"  [error] {error}" in mail.body
    assert f"Job {job['id']} (usage_scan) of workspace 'Nightly imports' ended: error." in mail.body
    assert len(smtp_server.messages) == 1


def test_a_finished_job_is_mailed_only_when_asked(start_service, smtp_server, tmp_path) -> None:
    service = start_service(smtp_url=smtp_server.url)
    ws = workspace(service, host_config(tmp_path), name="Quiet")
    assert service.client.patch(f"/workspaces/{ws}", json={"settings": {"notification_emails": TO}}
                                ).status_code == 200
    assert "notify_on_finished" not in _stored_settings(service, ws)  # stored only when given
    assert run(service, ws, "verify")["status"] == "finished"
    assert smtp_server.messages == []  # the worker let go of the job: no mail was sent, none is on its way

    answer = service.client.patch(f"/workspaces/{ws}?load_full_structure=1",
                                  json={"settings": {"notification_emails": TO, "notify_on_finished": True}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["workspace"]["settings"]["notify_on_finished"] is True
    job = run(service, ws, "verify")
    [mail] = smtp_server.wait_for(1)
    assert (mail.to, mail.subject) == (TO, "[brokers] verify of Quiet: finished")
    assert f"Job {job['id']} (verify)" in mail.body


def test_notify_on_finished_is_a_flag(service) -> None:
    answer = service.client.post("/workspaces", json={"name": "flag", "settings": {"notify_on_finished": "yes"}})
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["settings.notify_on_finished"]


def test_no_addresses_no_mail(start_service, smtp_server, tmp_path) -> None:
    service = start_service(smtp_url=smtp_server.url)
    ws = _failing_workspace(service, tmp_path, {"notify_on_finished": True}, "Nobody listens")
    assert run(service, ws, "usage_scan")["status"] == "error"
    assert smtp_server.messages == []


def _no_secret_no_traceback(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert PASSWORD not in caplog.text
    assert "Traceback" not in caplog.text
    assert [r for r in caplog.records if r.exc_info] == []
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "was not sent" in r.getMessage()]


def test_a_mail_server_that_is_down_only_costs_a_warning(start_service, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    service = start_service(smtp_url=f"smtp://mailer:{PASSWORD}@127.0.0.1:{free_port()}")
    ws = _failing_workspace(service, tmp_path, {"notification_emails": TO}, "Mail down")
    job = run(service, ws, "usage_scan")
    assert job["status"] == "error"
    assert "WorkspaceNotFound" in job["stats"]["error"]
    [warning] = _no_secret_no_traceback(caplog)
    assert warning.startswith(f"job {job['id']}: the notification mail was not sent:")
    assert PASSWORD not in repr(service.settings)
    # The service goes on: the next job runs and ends too.
    assert run(service, ws, "usage_scan")["status"] == "error"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")  # loopback only
def test_the_mail_server_login(start_service, make_smtp_server, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = make_smtp_server(user="mailer", password=PASSWORD)
    service = start_service(smtp_url=server.url)
    ws = _failing_workspace(service, tmp_path, {"notification_emails": TO}, "Signed in")
    assert run(service, ws, "usage_scan")["status"] == "error"
    [mail] = server.wait_for(1)
    assert mail.to == TO
    assert server.logins == [("mailer", True)]

    refused = start_service(smtp_url=server.url_with("mailer", PASSWORD + "-wrong"))
    ws = _failing_workspace(refused, tmp_path, {"notification_emails": TO}, "Wrong password")
    job = run(refused, ws, "usage_scan")
    assert job["status"] == "error"
    assert server.logins[-1] == ("mailer", False)
    assert len(server.messages) == 1
    [warning] = _no_secret_no_traceback(caplog)
    assert warning.startswith(f"job {job['id']}: the notification mail was not sent:")


def test_a_workspace_name_on_two_lines_still_gets_its_mail(start_service, smtp_server, tmp_path) -> None:
    """A name may hold a line break (and any Unicode); a mail header may not: the subject is one line."""
    service = start_service(smtp_url=smtp_server.url)
    ws = _failing_workspace(service, tmp_path, {"notification_emails": TO}, "Données\r\nBcc: victim@example.test")
    assert run(service, ws, "usage_scan")["status"] == "error"
    [mail] = smtp_server.wait_for(1)
    assert mail.subject == "[brokers] usage_scan of Données Bcc: victim@example.test: error"
    assert mail.message["Bcc"] is None and mail.to == TO
    assert "of workspace 'Données\\r\\nBcc: victim@example.test' ended: error." in mail.body


def test_the_login_waits_for_starttls_when_the_server_offers_it(start_service, make_smtp_server, tmp_path,
                                                                 monkeypatch) -> None:
    """``smtp://`` upgrades with STARTTLS when offered (verifying the certificate): the password never goes out
    in clear text to a server that offers better."""
    server = make_smtp_server(user="mailer", password=PASSWORD, tls=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # trust the test's own certificate authority
    service = start_service(smtp_url=server.url)
    ws = _failing_workspace(service, tmp_path, {"notification_emails": TO}, "Over TLS")
    assert run(service, ws, "usage_scan")["status"] == "error"
    [mail] = server.wait_for(1)
    assert (mail.to, mail.encrypted) == (TO, True)
    assert server.logins == [("mailer", True)]
