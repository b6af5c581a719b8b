"""One thin entry point per DVC stage: parse the paths dvc.yaml passes, load that stage's params
section, call one `ckd.pipeline` function, write `metrics/<stage>.json`."""
