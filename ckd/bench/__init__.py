"""Benchmarks: distillation methods at equal teacher budget (`python -m ckd.bench`) and the
comparative data path's speed (`python -m ckd.bench.datapath`)."""
