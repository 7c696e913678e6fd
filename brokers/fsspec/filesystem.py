"""The fsspec view of a broker: every call goes through the broker's own methods, on every backend.

So the view keeps the broker's promises: paths are checked by :func:`brokers.paths.normalize` (``..`` that
escapes, NUL bytes and the like are :class:`~brokers.errors.PathOutsideWorkspace`, an escaping symbolic link is
refused by the host broker's confined opens); writes are the broker's atomic writes (invisible until closed,
discarded on error, checksummed as the broker does); listings come from the store each time (no cache to go
stale) and never show temporary files; ``rm`` of the root empties the workspace and leaves the bucket or the
workspace folder in place.

Paths are relative to the workspace root; a leading ``/`` means the root too (``"/ds"`` is ``"ds"``, as dask
passes it), and ``brokers://<handle>/<path>`` is the URL form (:meth:`BrokerFileSystem.unstrip_protocol`). A
workspace holds files only: directories are implied by the files below them, ``mkdir`` has nothing to do, and
parents never need creating before a write.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from glob import has_magic
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.utils import merge_offset_ranges, stringify_path

from ..core.broker import FSSPEC_PROTOCOL, Broker
from ..core.streams import COPY_CHUNK, WriteStream, copy_stream
from ..errors import BrokerError, FileNotFound
from ..paths import normalize
from ..types import FileInfo
from .files import DeferredWrite
from .handles import handle_of, lookup

__all__ = ["BrokerFileSystem"]

_MERGE_GAP = 64 * 1024
"""``cat_ranges`` fetches ranges of one file less than this far apart with one request."""
_MERGE_BLOCK = 32 * 1024 * 1024
"""... as long as the merged range stays below this size."""
_RANGE_WORKERS = 8
"""Merged ranges fetched at the same time by ``cat_ranges``."""


def _rebuild(broker: Broker) -> BrokerFileSystem:
    return BrokerFileSystem(broker=broker)


class BrokerFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """An fsspec filesystem over one workspace (``broker.fs``), for pandas, pyarrow, dask, zarr and xarray.

    Args:
        broker: The workspace. Built without one, the view finds its broker by ``workspace`` (a handle from a
            ``brokers://`` URL, known in the process that made it) or rebuilds it from ``configuration`` (a
            secret-free configuration, as :meth:`to_json` writes it; credentials then come from this process's
            registry or the standard AWS chain, as for an unpickled broker).
    """

    protocol = FSSPEC_PROTOCOL
    root_marker = ""
    cachable = False
    async_impl = False

    def __init__(self, broker: Broker | None = None, *, workspace: str | None = None,
                 configuration: dict[str, Any] | None = None, **kwargs: Any) -> None:
        broker = broker if broker is not None else _find_broker(workspace, configuration)
        self.broker = broker
        self.handle = handle_of(broker)
        super().__init__()

    def to_dict(self, *, include_password: bool = True) -> dict[str, Any]:
        """The view as JSON data: its workspace handle and secret-free configuration (``from_dict`` rebuilds it)."""
        del include_password  # no password is ever included
        cls = type(self)
        return {"cls": f"{cls.__module__}:{cls.__name__}", "protocol": FSSPEC_PROTOCOL, "args": [],
                "workspace": self.handle, "configuration": self.broker.shareable_config().to_dict(mask=False)}

    def __repr__(self) -> str:
        return f"BrokerFileSystem({self.broker!r})"

    @property
    def _fs_token(self) -> str:
        """Views of one workspace (same configuration and credentials) are equal, in any thread."""
        return self.handle

    @property
    def fsid(self) -> str:
        """The workspace handle."""
        return self.handle

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the broker does (no secret travels)."""
        return _rebuild, (self.broker,)

    # ------------------------------------------------------------------ paths
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``brokers://<handle>/a/b/``, ``/a/b`` and ``a/b`` are all the workspace path ``a/b``."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(stringify_path(path))
        for marker in (f"{FSSPEC_PROTOCOL}://", f"{FSSPEC_PROTOCOL}::"):
            if text.startswith(marker):
                text = text[len(marker):].partition("/")[2]
        return text.strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        if path.startswith(f"{FSSPEC_PROTOCOL}://"):
            handle = path[len(FSSPEC_PROTOCOL) + 3:].partition("/")[0]
            if handle:
                return {"workspace": handle}
        return {}

    def unstrip_protocol(self, name: str) -> str:
        """The URL of a workspace path: ``brokers://<handle>/<path>`` (``fsspec.open`` finds this view by it)."""
        return f"{FSSPEC_PROTOCOL}://{self.handle}/{self._strip_protocol(name)}"

    def _rel(self, path: Any, *, allow_root: bool = True) -> str:
        """The checked workspace path of an fsspec path (``PathOutsideWorkspace`` for one that escapes)."""
        return normalize(self._strip_protocol(path), allow_root=allow_root)

    def _into(self, source: str, target: Any) -> str:
        """``target``, or ``target/<name of source>`` when ``target`` ends with ``/`` (a folder to copy into)."""
        text = str(target)
        if text.endswith("/") and self._strip_protocol(text):
            return self._rel(f"{self._strip_protocol(text)}/{source.rpartition('/')[2]}", allow_root=False)
        return self._rel(text, allow_root=False)

    # ------------------------------------------------------------------ looking
    @staticmethod
    def _file(item: FileInfo) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": item.path, "size": item.size, "type": "file", "mtime": item.modified}
        if item.checksum is not None:
            entry["checksum"] = item.checksum
        return entry

    @staticmethod
    def _folder(path: str) -> dict[str, Any]:
        return {"name": path, "size": 0, "type": "directory"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """List a folder (one level), or a file as itself; fresh from the store every time."""
        rel = self._rel(path)
        out = [self._file(e) if isinstance(e, FileInfo) else self._folder(e) for e in self.broker.entries(rel)]
        if not out and rel:
            out = [self._file(self._file_info(rel, path))]
        out.sort(key=lambda e: e["name"])
        return out if detail else [e["name"] for e in out]

    def _file_info(self, rel: str, path: Any) -> FileInfo:
        try:
            return self.broker.info(rel)
        except FileNotFound as exc:
            raise self._missing(path) from exc

    def _missing(self, path: Any) -> FileNotFoundError:
        return FileNotFoundError(f"no file or folder {path!r} in {self.broker.describe()}")

    def _refuse_existing(self, rel: str, path: Any) -> None:
        """``FileExistsError`` if ``rel`` is a file (exclusive modes check before they write)."""
        if self.broker.exists(rel):
            raise FileExistsError(f"{path!r} exists in {self.broker.describe()}")

    def _holds_files(self, rel: str) -> bool:
        """Whether a file lies below the folder ``rel`` (one listing request, stopped at the first file)."""
        return next(iter(self.broker.list(rel)), None) is not None

    def _unless_folder(self, rel: str, action: Callable[[], object]) -> bool:
        """Run a file ``action`` and return True; return False if ``rel`` is a folder, not a file."""
        try:
            action()
        except FileNotFound:
            if not self.isdir(rel):
                raise
            return False
        return True

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """A file's details, or a folder's (a folder exists when a file lies below it; the root always does)."""
        rel = self._rel(path)
        if not rel:
            return self._folder("")
        with contextlib.suppress(FileNotFound):
            return self._file(self.broker.info(rel))
        if self._holds_files(rel):
            return self._folder(rel)
        raise self._missing(path)

    def isdir(self, path: str) -> bool:
        """True for the root and for a folder with a file below it (one listing request, no lookup of a file)."""
        rel = self._rel(path)
        return not rel or self._holds_files(rel)

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, detail: bool = False,
             **kwargs: Any) -> Any:
        """Every file below ``path`` (and folder, with ``withdirs``), from one recursive listing."""
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        rel = self._rel(path)
        found: dict[str, dict[str, Any]] = {}
        cut = len(rel) + 1 if rel else 0
        for item in self.broker.list(rel):
            parts = item.path[cut:].split("/")
            if maxdepth is not None and len(parts) > maxdepth:
                if withdirs:
                    self._add_folders(found, rel, parts[:maxdepth])
                continue
            found[item.path] = self._file(item)
            if withdirs:
                self._add_folders(found, rel, parts[:-1])
        if not found and rel:
            with contextlib.suppress(FileNotFound):
                found[rel] = self._file(self.broker.info(rel))
        if withdirs and found and rel and rel not in found:
            found[rel] = self._folder(rel)
        ordered = dict(sorted(found.items()))
        return ordered if detail else list(ordered)

    def _add_folders(self, found: dict[str, dict[str, Any]], rel: str, parts: list[str]) -> None:
        for depth in range(1, len(parts) + 1):
            name = "/".join([rel, *parts[:depth]] if rel else parts[:depth])
            found.setdefault(name, self._folder(name))

    def modified(self, path: str) -> Any:
        """The file's last modification time (timezone-aware UTC)."""
        return self._file_info(self._rel(path, allow_root=False), path).modified

    # ------------------------------------------------------------------ reading
    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        rel = self._rel(path, allow_root=False)
        if mode == "rb":
            return self.broker.open(rel, "rb", buffer_size=block_size or COPY_CHUNK)
        if mode not in ("wb", "xb", "ab"):
            raise ValueError(f"mode must be 'rb', 'wb', 'xb' or 'ab', not {mode!r}")
        if mode == "xb":
            self._refuse_existing(rel, path)
        stream = self.broker.open(rel, "wb", buffer_size=block_size or COPY_CHUNK)
        assert isinstance(stream, WriteStream)
        if mode == "ab":  # the old content, then the new, committed as one atomic write
            try:
                with self.broker.open(rel, "rb") as old:
                    copy_stream(old, stream)
            except FileNotFound:
                pass
            except BaseException:
                stream.abort()
                raise
        return stream if autocommit else DeferredWrite(stream)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """A whole file or the bytes ``[start, end)`` (negative: from the end), fetching only those bytes."""
        rel = self._rel(path, allow_root=False)
        begin, stop = self._offsets(rel, start, end)
        if stop is not None and stop <= begin:
            self.broker.info(rel)  # an empty range of a missing file is still FileNotFound
            return b""
        return self.broker.read_bytes(rel, begin, stop)

    def _offsets(self, rel: str, start: int | None, end: int | None) -> tuple[int, int | None]:
        """Positions of fsspec's ``start``/``end`` (None, or negative: from the end); the size is asked if needed."""
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = self.broker.info(rel).size
            start, end = _absolute(start, size), _absolute(end, size)
        return start or 0, end

    def cat_ranges(self, paths: list[str], starts: Any, ends: Any, max_gap: int | None = None,
                   on_error: str = "return", **kwargs: Any) -> list[Any]:
        """Many byte ranges: those of one file close together are fetched with one request, several at a time."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        count = len(paths)
        starts = starts if isinstance(starts, list) else [starts] * count
        ends = ends if isinstance(ends, list) else [ends] * count
        if len(starts) != count or len(ends) != count:
            raise ValueError("paths, starts and ends must have the same length")
        out: list[Any] = [None] * count
        wanted: list[tuple[int, str, int, int | None]] = []
        for index, (path, start, end) in enumerate(zip(paths, starts, ends, strict=True)):
            try:
                rel = self._rel(path, allow_root=False)
                wanted.append((index, rel, *self._offsets(rel, start, end)))
            except (BrokerError, OSError, ValueError) as exc:
                out[index] = exc
        merged = merge_offset_ranges([w[1] for w in wanted], [w[2] for w in wanted], [w[3] for w in wanted],
                                     max_gap=_MERGE_GAP if max_gap is None else max_gap, max_block=_MERGE_BLOCK)
        blocks = list(zip(*merged, strict=True))

        def fetch(block: tuple[str, int, int | None]) -> bytes | Exception:
            rel, start, end = block
            try:
                return self.broker.read_bytes(rel, start, end) if end is None or end > start else b""
            except (BrokerError, OSError, ValueError) as exc:
                return exc

        with ThreadPoolExecutor(max(1, min(_RANGE_WORKERS, len(blocks)))) as pool:
            fetched = list(pool.map(fetch, blocks))
        by_file: dict[str, list[tuple[int, int | None, bytes | Exception]]] = {}
        for (rel, bstart, bend), data in zip(blocks, fetched, strict=True):
            by_file.setdefault(rel, []).append((bstart, bend, data))
        for index, rel, start, end in wanted:
            bstart, _, data = next(b for b in by_file[rel] if _covers(b[0], b[1], start, end))
            out[index] = data if isinstance(data, Exception) else data[start - bstart:
                                                                        None if end is None else end - bstart]
        failed = next((value for value in out if isinstance(value, Exception)), None)
        if failed is not None and on_error != "return":
            raise failed
        return out

    def get(self, rpath: Any, lpath: Any, recursive: bool = False, callback: Any = None,
            maxdepth: int | None = None, **kwargs: Any) -> None:
        """Download files or folders (fsspec's rules: a folder into an existing local folder lands inside it)."""
        if isinstance(rpath, str) and isinstance(lpath, str) and (lpath.endswith("/") or os.path.isdir(lpath)):
            rpath, lpath = self._top_level_into(rpath, lpath, os.path.join, recursive)
        extra = {} if callback is None else {"callback": callback}
        super().get(rpath, lpath, recursive=recursive, maxdepth=maxdepth, **extra, **kwargs)

    def copy(self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None,
             on_error: str | None = None, **kwargs: Any) -> None:
        """Copy files or folders within the workspace (a folder into an existing folder lands inside it)."""
        if isinstance(path1, str) and isinstance(path2, str) and (path2.endswith("/") or self.isdir(path2)):
            path1, path2 = self._top_level_into(path1, path2, posixpath.join, recursive)
        super().copy(path1, path2, recursive=recursive, maxdepth=maxdepth, on_error=on_error, **kwargs)

    def _top_level_into(self, source: str, target: str, join: Any, recursive: bool) -> tuple[str, str]:
        """Name the destination of a top-level file or folder copied into a folder explicitly.

        fsspec finds it by cutting the source's last path component off the common prefix, which a path at the
        workspace root (``"a.txt"``, no ``/``) does not have: ``("a.txt", "d/")`` becomes ``("a.txt", "d/a.txt")``
        and, recursively, ``("src", "t")`` becomes ``("src/", "t/src")``.
        """
        rel = self._rel(source)
        if not rel or "/" in rel or has_magic(source) or source.endswith("/"):
            return source, target
        if self.broker.exists(rel):
            return rel, join(target, rel)
        if recursive and self.isdir(rel):
            return rel + "/", join(target, rel)
        return source, target

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any) -> None:
        """Download a file (a folder becomes a local folder)."""
        rel = self._rel(rpath)
        if outfile is not None:
            with self.broker.open(rel, "rb") as stream:
                copy_stream(stream, outfile)
            return
        if not rel or not self._unless_folder(rel, lambda: self.broker.download(rel, lpath)):
            os.makedirs(lpath, exist_ok=True)

    # ------------------------------------------------------------------ writing
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Write a whole file atomically (``mode="create"``: only if it does not exist yet)."""
        rel = self._rel(path, allow_root=False)
        if mode == "create":
            self._refuse_existing(rel, path)
        self.broker.write_bytes(rel, value)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite",
                 **kwargs: Any) -> None:
        """Upload a local file atomically (a local folder needs nothing: folders are implicit)."""
        if os.path.isdir(lpath):
            return
        rel = self._into(lpath, rpath)
        if mode == "create":
            self._refuse_existing(rel, rpath)
        self.broker.upload(lpath, rel)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy a file (server-side where the store can); copying a folder by itself has nothing to do."""
        source = self._rel(path1)
        if source:
            self._unless_folder(source, lambda: self.broker.copy(source, self._into(source, path2)))

    def mv(self, path1: Any, path2: Any, recursive: bool = False, maxdepth: int | None = None,
           **kwargs: Any) -> None:
        """Move: one file by the broker's own move (atomic where the store allows), anything else by copy + rm."""
        if isinstance(path1, str) and isinstance(path2, str) and not has_magic(path1):
            source = self._rel(path1)
            with contextlib.suppress(FileNotFound):
                if source:
                    self.broker.move(source, self._into(source, path2))
                    return
        super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        """Create an empty file (or empty an existing one); without ``truncate`` an existing file is left alone."""
        rel = self._rel(path, allow_root=False)
        if truncate or not self.broker.exists(rel):
            self.broker.write_bytes(rel, b"")

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing to do: folders are implied by the files below them."""
        self._rel(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing to do: folders are implied by the files below them (a file in the way is an error)."""
        rel = self._rel(path)
        if rel and self.broker.exists(rel):
            raise FileExistsError(f"{path!r} is a file in {self.broker.describe()}")

    # ------------------------------------------------------------------ deleting
    def rm_file(self, path: str) -> None:
        """Delete one file."""
        self.broker.delete(self._rel(path, allow_root=False))

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files, or folders with ``recursive``; the root empties the workspace (never removes it)."""
        paths = [str(stringify_path(p)) for p in (path if isinstance(path, list) else [path])]
        named: list[str] = []
        for item in paths:
            named += self.expand_path(item, maxdepth=maxdepth) if has_magic(item) else [item]
        rels = [self._rel(item) for item in named]
        if recursive and maxdepth is None and "" in rels:
            self.broker.delete_all()
            return
        files: list[str] = []
        for rel in rels:
            files += self._files_to_remove(rel, recursive, maxdepth)
        self.broker.delete_many(dict.fromkeys(files))

    def _files_to_remove(self, rel: str, recursive: bool, maxdepth: int | None) -> list[str]:
        if rel and self.broker.exists(rel):
            return [rel]
        if recursive:
            found = self.find(rel, maxdepth=maxdepth, detail=True)
            if found:
                return [name for name, entry in found.items() if entry["type"] == "file"]
        elif not rel or self.isdir(rel):
            raise IsADirectoryError(f"{rel or '/'!r} is a folder: rm(..., recursive=True) deletes it")
        raise self._missing(rel)

    def rmdir(self, path: str) -> None:
        """Remove an empty folder: nothing to do (a folder with files in it is an error)."""
        rel = self._rel(path)
        if rel and self._holds_files(rel):
            raise OSError(f"folder {path!r} in {self.broker.describe()} is not empty")

    def invalidate_cache(self, path: str | None = None) -> None:
        """Nothing is cached: every listing comes from the store."""


def _absolute(offset: int | None, size: int) -> int | None:
    """An fsspec offset (negative: from the end) as a position in a file of ``size`` bytes."""
    if offset is None or offset >= 0:
        return offset
    return max(size + offset, 0)


def _covers(bstart: int, bend: int | None, start: int, end: int | None) -> bool:
    """True if the fetched block ``[bstart, bend)`` holds the range ``[start, end)``."""
    return bstart <= start and (bend is None or (end is not None and end <= bend))


def _find_broker(workspace: str | None, configuration: dict[str, Any] | None) -> Broker:
    if workspace is not None:
        broker = lookup(workspace)
        if broker is not None:
            return broker
    if configuration is not None:
        from ..registry import get_broker

        return get_broker(configuration)
    if workspace is not None:
        raise BrokerError(f"no workspace {workspace!r} in this process: a brokers:// URL opens where its "
                          "filesystem was made; elsewhere pass the filesystem (it pickles) or its to_json()")
    raise BrokerError("BrokerFileSystem needs a broker (broker.fs), a workspace handle or a configuration")
