"""pyarrow ``parquet.write_table``/``read_table`` and ``dataset`` with hive partitions through ``broker.fs``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .data import frame, parquet_frame


def _table(years: list[int], start: int = 0) -> pa.Table:
    rows = [(y, start + i) for y in years for i in range(5)]
    return pa.table({"year": [y for y, _ in rows], "v": [v for _, v in rows]})


def _sorted(table: pa.Table) -> list[tuple[int, int]]:
    return sorted(zip(table.column("year").to_pylist(), table.column("v").to_pylist(), strict=True))


def test_write_table_read_table(ws):
    table = pa.Table.from_pandas(frame(seed=4), preserve_index=False)
    pq.write_table(table, "pa/deep/t.parquet", filesystem=ws.fs)  # a new folder, no mkdir
    assert ws.listed() == ["pa/deep/t.parquet"] and ws.stored() == ["pa/deep/t.parquet"]
    assert pa.Table.from_pandas(parquet_frame(ws.broker.read_bytes("pa/deep/t.parquet"))).equals(table)
    assert pq.read_table("pa/deep/t.parquet", filesystem=ws.fs).equals(table)
    assert pq.read_table("pa/deep/t.parquet", filesystem=ws.fs, columns=["x"]).equals(table.select(["x"]))
    assert pq.ParquetFile("pa/deep/t.parquet", filesystem=ws.fs).metadata.num_rows == table.num_rows


def test_write_dataset_hive_then_replace_a_partition(ws):
    def write(table: pa.Table) -> None:
        ds.write_dataset(table, "hive", filesystem=ws.fs, format="parquet",
                         partitioning=ds.partitioning(pa.schema([("year", pa.int64())]), flavor="hive"),
                         existing_data_behavior="delete_matching")

    def read() -> pa.Table:
        return ds.dataset("hive", filesystem=ws.fs, format="parquet", partitioning="hive").to_table()

    write(_table([2020, 2021]))
    listed = ws.listed("hive")
    assert [p.rsplit("/", 1)[0] for p in listed] == ["hive/year=2020", "hive/year=2021"], listed
    assert ws.stored() == listed
    assert _sorted(read()) == _sorted(_table([2020, 2021]))
    for path in listed:  # what the broker holds is the partition's rows (the key is in the path)
        assert sorted(parquet_frame(ws.broker.read_bytes(path))["v"]) == list(range(5))

    write(_table([2021], start=100))  # replaces year=2021 only
    assert _sorted(read()) == _sorted(_table([2020])) + _sorted(_table([2021], start=100))
    listed = ws.listed("hive")
    assert [p.rsplit("/", 1)[0] for p in listed] == ["hive/year=2020", "hive/year=2021"], listed
    assert ws.stored() == listed
    new = next(p for p in listed if "year=2021" in p)
    assert sorted(parquet_frame(ws.broker.read_bytes(new))["v"]) == list(range(100, 105))
