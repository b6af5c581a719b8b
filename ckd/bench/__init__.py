"""The benchmark runner: distillation methods at equal teacher budget through the pipeline's own stages
(`python -m ckd.bench`; on a Dask cluster `python -m ckd.bench.grid`; text `python -m ckd.bench.text`).
One-off studies (speed, scaling, start-up, int8) are scripts under `bench/`, beside their results."""
