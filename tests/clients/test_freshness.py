"""Listings through ``broker.fs`` are fresh: what the broker writes or deletes outside the fs shows at once.

The same fs instance is used throughout, after it has listed the folder, so a listing cache would show.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds
import pytest

from .data import frame, parquet_bytes


def _names(fs, path: str) -> list[str]:
    """``fs.ls`` names as workspace paths (the fs may spell the root as a leading ``/``)."""
    return sorted(name.lstrip("/") for name in fs.ls(path, detail=False))


def test_outside_writes_and_deletes_show_through_the_same_fs(ws):
    fs = ws.fs
    ws.broker.write_bytes("ds/p0.parquet", parquet_bytes(frame(rows=3)))
    assert sorted(pd.read_parquet("ds", filesystem=fs)["id"]) == [0, 1, 2]
    assert _names(fs, "ds") == ["ds/p0.parquet"]

    ws.broker.write_bytes("ds/p1.parquet", parquet_bytes(frame(rows=2, start=10)))
    assert sorted(pd.read_parquet("ds", filesystem=fs)["id"]) == [0, 1, 2, 10, 11]
    assert sorted(ds.dataset("ds", filesystem=fs, format="parquet").to_table()["id"].to_pylist()) == \
        [0, 1, 2, 10, 11]
    assert fs.exists("ds/p1.parquet") and fs.info("ds/p1.parquet")["size"] == ws.broker.info("ds/p1.parquet").size

    ws.broker.delete("ds/p1.parquet")
    assert not fs.exists("ds/p1.parquet")
    with pytest.raises(FileNotFoundError):
        fs.info("ds/p1.parquet")
    assert _names(fs, "ds") == ["ds/p0.parquet"]
    assert sorted(pd.read_parquet("ds", filesystem=fs)["id"]) == [0, 1, 2]
    assert sorted(ds.dataset("ds", filesystem=fs, format="parquet").to_table()["id"].to_pylist()) == [0, 1, 2]


def test_a_rewrite_outside_the_fs_is_read_whole(ws):
    """A file replaced by the broker (another size) reads as the new file, not the cached size of the old one."""
    fs = ws.fs
    ws.broker.write_bytes("r/p.parquet", parquet_bytes(frame(rows=3)))
    assert sorted(pd.read_parquet("r/p.parquet", filesystem=fs)["id"]) == [0, 1, 2]
    ws.broker.write_bytes("r/p.parquet", parquet_bytes(frame(rows=300, start=7)))
    assert fs.size("r/p.parquet") == ws.broker.info("r/p.parquet").size
    assert sorted(pd.read_parquet("r/p.parquet", filesystem=fs)["id"]) == list(range(7, 307))
