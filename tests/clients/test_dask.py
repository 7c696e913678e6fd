"""dask ``read_parquet``/``to_parquet`` through ``broker.fs``, with workspace paths spelt with a leading ``/``."""

from __future__ import annotations

import dask.dataframe as dd
import pandas as pd
import pytest

from .data import frame, parquet_bytes, parquet_frame


@pytest.mark.parametrize("path", ["ds", "/ds"])
def test_read_parquet_of_files_the_broker_wrote(ws, path):
    ws.broker.write_bytes("ds/p0.parquet", parquet_bytes(frame(rows=4)))
    ws.broker.write_bytes("ds/p1.parquet", parquet_bytes(frame(rows=3, start=10)))
    back = dd.read_parquet(path, filesystem=ws.fs).compute()
    assert sorted(back["id"]) == [0, 1, 2, 3, 10, 11, 12]
    assert dd.read_parquet(path, filesystem=ws.fs, columns=["x"]).compute()["x"].sum() == pytest.approx(
        frame(rows=4)["x"].sum() + frame(rows=3, start=10)["x"].sum())


@pytest.mark.parametrize("path", ["dd/out", "/dd/out"])
def test_to_parquet_then_read_parquet(ws, path):
    df = frame(rows=60, seed=5)
    dd.from_pandas(df, npartitions=3).to_parquet(path, filesystem=ws.fs, write_index=False)
    listed = ws.listed()
    assert listed == ["dd/out/part.0.parquet", "dd/out/part.1.parquet", "dd/out/part.2.parquet"], listed
    assert ws.stored() == listed  # on a prefixed S3 workspace: "ws/dd/out/...", never "ws//dd/out/..."
    whole = pd.concat([parquet_frame(ws.broker.read_bytes(p)) for p in listed], ignore_index=True)
    pd.testing.assert_frame_equal(whole, df, check_dtype=False)  # dask writes strings as string[pyarrow]
    back = dd.read_parquet(path, filesystem=ws.fs).compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
