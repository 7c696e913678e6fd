"""``brokers users add/list/revoke``: the real command against SQLite and PostgreSQL, then the service on that database.

A token is printed once, on stdout; the database keeps its SHA-256 only; the service takes it as ``X-Access-Token``
at once, records who writes, lets only owners and admins edit, and refuses a revoked token at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text

from brokers.service.db.models import User, Workspace
from brokers.service.settings import normalize_database_url

HOST = {"broker": {"type": "host", "host_path": "/data"}}


def brokers(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed command (``python -m brokers.cli``, what the ``brokers`` script runs) in a new process."""
    return subprocess.run([sys.executable, "-m", "brokers.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def users(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return brokers("users", *args, "--database-url", database_url)


def add(database_url: str, name: str, *flags: str) -> str:
    done = users(database_url, "add", name, *flags)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n" and token.startswith("brk_") and len(token) > 40
    assert token not in done.stderr
    return token


def rows(database_url: str) -> dict[str, list[dict]]:
    """Every row of every table, as the database returns them."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as conn:
            return {table: [dict(r) for r in conn.execute(text(f'SELECT * FROM "{table}"')).mappings()]
                    for table in inspect(conn).get_table_names()}
    finally:
        engine.dispose()


def user_ids(database_url: str) -> dict[str, int]:
    return {row["name"]: row["id"] for row in rows(database_url)["user"]}


def test_tokens_from_the_command_line_work_in_the_service(database_url, start_service) -> None:
    alice = add(database_url, "alice")
    bob = add(database_url, "bob")
    root = add(database_url, "root", "--admin")
    service = start_service()
    ids = user_ids(database_url)

    def client(token: str):
        return lambda method, path, **kw: service.anonymous.request(method, path, headers={
            "X-Access-Token": token}, **kw)

    as_alice, as_bob, as_root = client(alice), client(bob), client(root)
    created = as_alice("POST", "/v6/workspaces/", json={"title": "Alice's", "configuration": HOST})
    assert created.status_code == 201, created.text
    ws_id = created.json()["id"]
    with service.app.state.service.sessions() as session:
        ws = session.get(Workspace, ws_id)
        assert (ws.owner_id, ws.author_id) == (ids["alice"], ids["alice"])

    refused = as_bob("PATCH", f"/v6/workspaces/{ws_id}/", json={"title": "Bob's now"})
    assert refused.status_code == 403 and refused.json()["errors"][0]["name"] == "not_owner"
    assert as_root("PATCH", f"/v6/workspaces/{ws_id}/", json={"title": "Root's edit"}).status_code == 204
    assert as_alice("PATCH", f"/v6/workspaces/{ws_id}/", json={"description": "mine"}).status_code == 204
    assert as_alice("GET", f"/v6/workspaces/{ws_id}/").json()["title"] == "Root's edit"

    done = users(database_url, "revoke", "alice")
    assert done.returncode == 0, done.stderr
    for method, path in (("GET", f"/v6/workspaces/{ws_id}/"), ("PATCH", f"/v6/workspaces/{ws_id}/")):
        answer = as_alice(method, path, json={"description": "after revoke"} if method == "PATCH" else None)
        assert answer.status_code == 403, answer.text
        assert answer.json()["errors"][0]["name"] == "invalid_token"
    assert as_bob("GET", f"/v6/workspaces/{ws_id}/").json()["description"] == "mine"
    with service.app.state.service.sessions() as session:
        assert session.scalar(select(User.revoked).where(User.name == "alice")) is not None


def test_the_database_keeps_only_the_digest(database_url) -> None:
    token = add(database_url, "carol")
    table = rows(database_url)
    carol = next(row for row in table["user"] if row["name"] == "carol")
    assert carol["token_digest"] == hashlib.sha256(token.encode()).hexdigest()
    dumped = json.dumps(table, default=str)
    assert token not in dumped and token[4:] not in dumped
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # the file, its WAL
        assert carol["token_digest"].encode() in stored
        assert token.encode() not in stored and token[4:].encode() not in stored


def test_list_shows_users_and_never_a_token(database_url) -> None:
    tokens = [add(database_url, "dave"), add(database_url, "erin", "--admin")]
    assert users(database_url, "revoke", "dave").returncode == 0
    done = users(database_url, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "admin", "created", "revoked"]
    table = {line.split()[1]: line.split() for line in lines[1:]}
    assert set(table) == {"service", "dave", "erin"}
    assert table["erin"][2] == "yes" and table["dave"][2] == "no" and table["service"][2] == "yes"
    assert table["erin"][4] == "-" and table["dave"][4] != "-"
    ids = user_ids(database_url)
    assert {name: int(row[0]) for name, row in table.items()} == ids
    digests = [row["token_digest"] for row in rows(database_url)["user"] if row["token_digest"]]
    assert digests  # erin's
    for secret in [*tokens, *digests]:
        assert secret not in done.stdout and secret not in done.stderr


def test_refusals_exit_1_with_one_clear_line(database_url) -> None:
    add(database_url, "frank")
    checks = [
        (("add", "frank"), "there is already a user named 'frank'"),
        (("add", "service"), "'service' is the service's built-in user"),
        (("add", " "), "a user name is 1-100 printable characters"),
        (("revoke", "nobody"), "there is no user named 'nobody'"),
        (("revoke", "service"), "there is no user named 'service'"),
    ]
    for args, message in checks:
        done = users(database_url, *args)
        assert (done.returncode, done.stdout) == (1, ""), (args, done)
        assert done.stderr == f"brokers users: {message}\n", args
    assert user_ids(database_url).keys() == {"service", "frank"}


def test_the_database_url_comes_from_the_environment(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    done = brokers("users", "add", "gina", env={"BROKERS_DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    assert "gina" in user_ids(url)
    home = tmp_path / "xdg"
    done = brokers("users", "add", "hal", env={"BROKERS_DATABASE_URL": "", "XDG_DATA_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert "hal" in user_ids(f"sqlite:///{home / 'brokers' / 'brokers.db'}")


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = users(f"postgresql://someone:pa55word@127.0.0.1:{port}/db", "list")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("brokers users: cannot use the database postgresql+psycopg://someone:***@127.0.0.1")
    assert done.stderr.count("\n") == 1 and "pa55word" not in done.stderr and "Traceback" not in done.stderr
    bad = users("not a url", "list")
    assert bad.returncode == 1 and bad.stderr.startswith("brokers users: cannot use the database") and \
        bad.stderr.count("\n") == 1


def test_usage_errors_exit_2(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    for args in (("users",), ("users", "add"), ("users", "frobnicate"), ("users", "list", "extra")):
        done = brokers(*args, "--database-url", url) if len(args) > 1 else brokers(*args)
        assert done.returncode == 2, (args, done)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_without_the_service_extra_it_names_the_install_command() -> None:
    code = ("import sys; sys.modules['sqlalchemy'] = None; from brokers.cli import main; "
            "sys.exit(main(['users', 'list', '--database-url', 'sqlite://']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("brokers users: ") and "pip install 'brokers[service]'" in done.stderr
    assert done.stderr.count("\n") == 1
