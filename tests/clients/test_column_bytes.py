"""Reading one column of a parquet file on S3 fetches about that column: bytes counted at the server.

The file (10 float columns, 2 row groups, ~6 MB) is written by the broker; the bound is 1.5 x (the column's
chunks + the footer), both taken from the file's own metadata. Every response body the server sends during the
read counts (object GETs and listings alike). pyarrow's own ``S3FileSystem`` on the same file is the control: it
shows the bound can be met and that the count is right.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.fixtures.s3 import ACCESS_KEY, REGION, SECRET_KEY

from .conftest import PREFIX
from .data import parquet_bytes

COLUMNS = [f"c{i}" for i in range(10)]
ROWS = 80_000
PATH = "t/table.parquet"
LIMIT = 1.5


@pytest.fixture
def table_file(s3_ws):
    rng = np.random.default_rng(7)
    df = pd.DataFrame({c: rng.random(ROWS) for c in COLUMNS})  # random floats: no compression to speak of
    data = parquet_bytes(df, row_group_size=ROWS // 2, use_dictionary=False)
    s3_ws.broker.write_bytes(PATH, data)
    meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    index = COLUMNS.index("c3")
    column = sum(meta.row_group(g).column(index).total_compressed_size for g in range(meta.num_row_groups))
    footer = meta.serialized_size + 8
    assert column > 10 * footer and len(data) > 8 * column  # the bound means something for this file
    return s3_ws, df, column + footer


READS = {
    "pandas.read_parquet": lambda fs, p: pd.read_parquet(p, filesystem=fs, columns=["c3"])["c3"].to_numpy(),
    "pq.read_table": lambda fs, p: pq.read_table(p, filesystem=fs, columns=["c3"])["c3"].to_numpy(),
    "ds.dataset.to_table": lambda fs, p: ds.dataset(p, filesystem=fs, format="parquet").to_table(
        columns=["c3"])["c3"].to_numpy(),
}


def _fetched(s3_server, read, fs, path, df) -> tuple[int, list[tuple[str, str | None, int]]]:
    mark = s3_server.mark()
    values = READS[read](fs, path)
    seen = s3_server.since(mark)
    np.testing.assert_array_equal(values, df["c3"].to_numpy())
    return sum(r.sent for r in seen), [(r.method, r.range, r.sent) for r in seen]


@pytest.mark.parametrize("read", list(READS))
def test_one_column_fetches_about_the_column(table_file, s3_server, read):
    ws, df, needed = table_file
    sent, requests = _fetched(s3_server, read, ws.fs, PATH, df)
    assert sent <= LIMIT * needed, f"{read}: {sent:,} bytes fetched for {needed:,} (column + footer): {requests}"


@pytest.mark.parametrize("read", list(READS))
def test_pyarrows_own_s3_client_meets_the_bound(table_file, s3_server, s3_bucket, read):
    import pyarrow.fs as pafs

    ws, df, needed = table_file
    fs = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, scheme="http",
                           endpoint_override=urlsplit(s3_server.endpoint).netloc)
    key = f"{s3_bucket}/{PATH}" if ws.backend == "s3_root" else f"{s3_bucket}/{PREFIX}/{PATH}"
    sent, requests = _fetched(s3_server, read, fs, key, df)
    assert sent <= LIMIT * needed, f"{read}: {sent:,} bytes fetched for {needed:,} (column + footer): {requests}"
