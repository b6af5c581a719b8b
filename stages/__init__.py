"""One thin entry point per DVC stage: parse the paths dvc.yaml passes, validate the whole params file,
call one `ckd.stages` function, save its outputs and write `metrics/<stage>.json`."""
