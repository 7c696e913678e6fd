"""Real data tools (pandas, pyarrow, dask, zarr, xarray) on ``broker.fs``, on every backend."""
