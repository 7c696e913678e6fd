"""pandas CSV and parquet through ``broker.fs``: into folders that do not exist yet, read back, same bytes."""

from __future__ import annotations

import io

import pandas as pd

from .data import frame, parquet_frame


def test_csv_through_fs_open_into_a_new_folder(ws):
    df = frame()
    with ws.fs.open("fresh/sub/a.csv", "w") as f:  # no mkdir: parents are implicit on write
        df.to_csv(f, index=False)
    assert ws.listed() == ["fresh/sub/a.csv"] and ws.stored() == ["fresh/sub/a.csv"]
    assert ws.broker.read_bytes("fresh/sub/a.csv") == df.to_csv(index=False).encode()
    with ws.fs.open("fresh/sub/a.csv", "rb") as f:
        pd.testing.assert_frame_equal(pd.read_csv(f), df)


def test_csv_through_the_fs_url(ws):
    """``to_csv``/``read_csv`` given ``fs.unstrip_protocol(path)``: fsspec finds the workspace from the URL alone."""
    df = frame(seed=1)
    url = ws.fs.unstrip_protocol("csv/b.csv")
    df.to_csv(url, index=False)
    assert ws.broker.read_bytes("csv/b.csv") == df.to_csv(index=False).encode()
    pd.testing.assert_frame_equal(pd.read_csv(url), df)
    assert ws.stored() == ["csv/b.csv"]


def test_parquet_into_a_new_folder(ws):
    df = frame(seed=2)
    df.to_parquet("new/p.parquet", filesystem=ws.fs, index=False)
    assert ws.listed() == ["new/p.parquet"] and ws.stored() == ["new/p.parquet"]
    pd.testing.assert_frame_equal(parquet_frame(ws.broker.read_bytes("new/p.parquet")), df)
    pd.testing.assert_frame_equal(pd.read_parquet("new/p.parquet", filesystem=ws.fs), df)
    pd.testing.assert_frame_equal(pd.read_parquet("new/p.parquet", filesystem=ws.fs, columns=["x"]), df[["x"]])


def test_parquet_partition_cols_and_csv_from_the_broker(ws):
    """``partition_cols`` writes a hive tree; a CSV the broker wrote reads through the fs."""
    df = frame(rows=40, seed=3).assign(part=lambda d: d["id"] % 2)
    df.to_parquet("tree", filesystem=ws.fs, partition_cols=["part"], index=False)
    listed = ws.listed("tree")
    assert {p.rsplit("/", 1)[0] for p in listed} == {"tree/part=0", "tree/part=1"} and ws.stored() == listed
    back = pd.read_parquet("tree", filesystem=ws.fs).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back[["id", "x", "name"]], df[["id", "x", "name"]])
    assert sorted(back["part"].astype("int64")) == sorted(df["part"])

    ws.broker.write_bytes("in/c.csv", df.to_csv(index=False).encode())
    with ws.fs.open("in/c.csv") as f:
        pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(f.read())), df)
