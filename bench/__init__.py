"""The benchmark runner: distillation methods at equal teacher budget through the pipeline's own stages
(`python -m bench`; on a Dask cluster `python -m bench.grid`; text `python -m bench.text`).
One-off studies (speed, scaling, start-up, int8) are scripts under `bench/`, beside their results."""
