"""Every example of README.md runs as written and prints what the README shows.

What runs, in README order, in one fresh temporary directory (``HOME`` and ``XDG_DATA_HOME`` inside it, the
virtualenv's ``bin`` first on ``PATH``, ``AWS_*`` naming the test S3 server's keys as a user's shell would name
theirs):

- `` ```python `` blocks are interactive sessions (``>>>``), each run by :mod:`doctest` in a fresh interpreter
  (a subprocess), so each block stands on its own.
- `` ```console `` blocks: each ``$ `` line is a command (continued while a line ends with ``\\`` or a quote is
  open); the lines up to the next ``$ `` are what it prints (stdout and stderr, as a terminal shows them; no line:
  it prints nothing). A block's commands share one ``bash``. A command must exit 0 unless it shows its ``$?``.
- `` ```bash `` blocks run with ``bash -e`` and must exit 0.
- `` ```json `` blocks hold one workspace configuration per line; each must validate.

Shown output is compared as doctest does with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``: ``...`` stands for any
text (a machine's disk size, an absolute path), runs of white space are equal. Timestamps (ISO 8601, ``ls -l``'s
``2026-11-25 15:30:00``, a log line's ``2026-11-25 15:30:00,123``, a ``datetime.datetime(...)`` repr) match any
timestamp.

Two addresses are the test's own, so that runs on one machine do not collide: the service's port ``8731``
becomes a free port, and the S3 endpoint ``http://127.0.0.1:9000`` the test's moto server (with a bucket ``data``).

Markers. A block runs unless the line just before its opening fence is one of these HTML comments (invisible on
GitHub, visible in the file); :data:`MARKERS` lists the ones allowed, so a new exception shows in review:

- ``<!-- readme-test: skip: REASON -->``: not run (the setup commands CI itself runs).
- ``<!-- readme-test: background -->``: a server. Its commands run in the background until what it has printed
  starts with what the block shows (its ready line; at most :data:`READY_TIMEOUT` seconds); the blocks after it
  run against it, and it is stopped (SIGINT, as Ctrl-C) at the end, when it must exit by itself.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
READY_TIMEOUT = 60.0
BLOCK_TIMEOUT = 120.0
"""A block still running after this long has hung (a server without its marker); far more than any needs."""
MARKERS = [("bash", "skip: CI runs these two itself (.ci/run)"), ("console", "background")]
"""The (language, marker) of every block that does not simply run, in README order."""

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(.+?)\s*-->\s*$")
_TIMESTAMP = re.compile(
    r"datetime\.datetime\([\d, ]+(?:tzinfo=[\w.]+)?\)"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:\d\d)?")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    """A fenced code block of the README."""

    lang: str
    text: str
    line: int
    marker: str | None = None


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the marker on the line before each."""
    found: list[Block] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = _MARKER.match(lines[i - 1]) if i else None
        found.append(Block(opening.group(1), "\n".join(lines[i + 1:end]) + "\n", i + 2,
                           marker.group(1) if marker else None))
        i = end + 1
    return found


def console_commands(text: str) -> list[tuple[str, str]]:
    """Split a console transcript into ``(command, shown output)`` pairs."""
    pairs: list[tuple[str, str]] = []
    command: list[str] | None = None
    output: list[str] = []
    for line in text.rstrip("\n").split("\n"):
        if command is not None and not output and _continues("\n".join(command)):
            command.append(line)
        elif line.startswith("$ "):
            if command is not None:
                pairs.append(("\n".join(command), "\n".join(output)))
            command, output = [line[2:]], []
        else:
            assert command is not None, f"output before the first command: {line!r}"
            output.append(line)
    if command is not None:
        pairs.append(("\n".join(command), "\n".join(output)))
    return pairs


def _continues(command: str) -> bool:
    if command.endswith("\\"):
        return True
    try:
        shlex.split(command, comments=True)
    except ValueError:  # an open quote
        return True
    return False


def _normalise(text: str) -> str:
    return _TIMESTAMP.sub("<timestamp>", text)


class Checker(doctest.OutputChecker):
    """doctest's comparison, with timestamps matching any timestamp."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(_normalise(want), _normalise(got), optionflags)


def matches(want: str, got: str) -> bool:
    """Whether ``got`` is what the README shows as ``want``."""
    return Checker().check_output(want + "\n", got if got.endswith("\n") else got + "\n", FLAGS)


def run_doctest(path: str, line: int) -> int:
    """Run a saved python block (from README line ``line``) as a doctest here; return the number of failures."""
    text = Path(path).read_text()
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "__main__"}, "README", "README.md", line - 1)
    runner = doctest.DocTestRunner(checker=Checker(), optionflags=FLAGS)
    runner.run(test)
    return runner.failures


# ---------------------------------------------------------------------------------------------------- running
class Session:
    """The temporary directory, environment and substitutions all blocks share."""

    def __init__(self, tmp: Path, endpoint: str, port: int, keys: tuple[str, str]) -> None:
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        self.substitutions = {"8731": str(port), "http://127.0.0.1:9000": endpoint}
        home = tmp / "home"
        home.mkdir()
        bin_dir = os.path.dirname(sys.executable)
        self.env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                    "XDG_DATA_HOME": str(home / ".local" / "share"), "TERM": "dumb", "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1], "AWS_DEFAULT_REGION": "us-east-1",
                    "BROKERS_REQUIRE_REAL_SERVERS": "1"}
        self.background: list[tuple[Block, subprocess.Popen[str], Path]] = []

    def sub(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def run(self, block: Block) -> list[str]:
        """Run one block; return what went wrong (nothing: it printed what the README shows)."""
        text = self.sub(block.text)
        where = f"README.md:{block.line} ({block.lang})"
        if block.lang == "python":
            path = self.cwd.parent / f"block-{block.line}.txt"
            path.write_text(text)
            done = subprocess.run([sys.executable, __file__, str(path), str(block.line)], cwd=self.cwd, env=self.env,
                                  capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False)
            return [] if done.returncode == 0 else [f"{where}:\n{done.stdout}{done.stderr}"]
        if block.lang == "bash":
            done = subprocess.run(["bash", "-e", "-c", text], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=BLOCK_TIMEOUT, check=False)
            return [] if done.returncode == 0 else [f"{where}: exit {done.returncode}\n{done.stdout}{done.stderr}"]
        if block.lang == "console":
            return self._console(block, text, where)
        if block.lang == "json":
            return self._configurations(text, where)
        return []

    def _console(self, block: Block, text: str, where: str) -> list[str]:
        pairs = console_commands(text)
        if block.marker == "background":
            return self._start(block, pairs, where)
        sentinel = "@@readme-test-command-done@@"
        script = "".join(f"{command}\nprintf '\\n{sentinel} %s\\n' $?\n" for command, _ in pairs)
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=BLOCK_TIMEOUT, check=False)
        pieces = done.stdout.split(f"\n{sentinel} ")
        problems = []
        for n, (command, want) in enumerate(pairs):
            if n + 1 >= len(pieces):
                problems.append(f"{where}: `{command}` did not finish (bash exit {done.returncode}):\n{done.stdout}")
                break
            got = pieces[n] if n == 0 else pieces[n].split("\n", 1)[1] if "\n" in pieces[n] else ""
            status = pieces[n + 1].split("\n", 1)[0]
            if os.environ.get("README_TEST_SHOW"):  # to update the README: pytest -s with README_TEST_SHOW=1
                print(f"$ {command}\n{got}", end="" if got.endswith("\n") else "\n")
            if not matches(want, got):
                problems.append(f"{where}: `{command}` printed\n{got}\nthe README shows\n{want}")
            if status != "0" and "$?" not in command:
                problems.append(f"{where}: `{command}` exited {status}")
        return problems

    def _start(self, block: Block, pairs: list[tuple[str, str]], where: str) -> list[str]:
        log = self.cwd.parent / f"background-{block.line}.log"
        with open(log, "w") as sink:
            process = subprocess.Popen(["bash", "-c", "\n".join(command for command, _ in pairs)], cwd=self.cwd,
                                       env=self.env, stdout=sink, stderr=subprocess.STDOUT, text=True,
                                       start_new_session=True)
        self.background.append((block, process, log))
        want = "\n".join(output for _, output in pairs if output)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            got = log.read_text()
            if matches(want, got) or matches(want + "\n...", got):  # ready; requests are logged after
                return []
            if process.poll() is not None or time.monotonic() > deadline:
                return [f"{where}: the server never printed\n{want}\nit printed\n{log.read_text()}"]
            time.sleep(0.1)

    def stop(self) -> list[str]:
        """Stop the background servers (SIGINT, as Ctrl-C); each must exit by itself."""
        problems = []
        for block, process, log in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                problems.append(f"README.md:{block.line}: the server did not stop on Ctrl-C:\n{log.read_text()}")
        return problems

    def _configurations(self, text: str, where: str) -> list[str]:
        import brokers

        problems = []
        for line in text.strip().split("\n"):
            result = brokers.validate_configuration(json.loads(line), check_access=False)
            if not result.is_valid:
                problems.append(f"{where}: {line} is not valid: {result.errors}")
        return problems


def readme_blocks() -> list[Block]:
    return [b for b in blocks(README.read_text()) if b.lang in ("python", "console", "bash", "json")]


def test_exceptions_are_the_known_few():
    assert [(b.lang, b.marker) for b in readme_blocks() if b.marker] == MARKERS
    assert {b.marker for b in readme_blocks()} <= {None} | {m for _, m in MARKERS}


def test_the_transcript_parser():
    text = ("$ a 'x\n  y' \\\n    z\nout 1\nout 2\n$ b\n$ c # it's a comment\nc out\n")
    assert console_commands(text) == [("a 'x\n  y' \\\n    z", "out 1\nout 2"), ("b", ""),
                                      ("c # it's a comment", "c out")]
    assert matches("FileInfo(modified=datetime.datetime(2026, 11, 25, 15, 30, tzinfo=datetime.timezone.utc))",
                   "FileInfo(modified=datetime.datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc))")
    assert matches("  32 2026-11-25 15:30:00  in/a\n...", "  32 2027-01-02 03:04:05  in/a\nmore\nlines")
    assert not matches("  32 2026-11-25 15:30:00  in/a", "  33 2027-01-02 03:04:05  in/a")
    assert not matches("", "something")


@pytest.mark.s3
def test_every_example_runs_as_written(tmp_path, s3_server, s3_client):
    from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, empty_bucket, free_port

    s3_client.create_bucket(Bucket="data")
    session = Session(tmp_path, s3_server.endpoint, free_port(), (ACCESS_KEY, SECRET_KEY))
    problems: list[str] = []
    try:
        for block in readme_blocks():
            if block.marker is None or block.marker == "background":
                problems += session.run(block)
    finally:
        problems += session.stop()
        empty_bucket(s3_client, "data")
        s3_client.delete_bucket(Bucket="data")
    assert not problems, "\n\n".join(problems)


if __name__ == "__main__":  # the subprocess side of a python block
    sys.exit(1 if run_doctest(sys.argv[1], int(sys.argv[2])) else 0)
