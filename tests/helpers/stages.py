"""Run the pipeline's stage commands as `dvc.yaml` spells them, in this process (tests only).

`python -m stages.X ARGS` is `stages.X.main(ARGS)`: the same entry point DVC starts, without an
interpreter's start-up (torch, pandas, ...) per stage. Tests that need DVC itself run `dvc repro`.
"""

from __future__ import annotations

import importlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from ckd.stages import read_dvc_yaml, stage_names


@dataclass
class Outcome:
    stage: str
    returncode: int
    stderr: str


def run_stage_commands(root: Path, capsys, monkeypatch, until: str | None = None) -> Outcome | None:
    """Each stage of `root/dvc.yaml` in order, in `root`, until one fails (its outcome is returned) or
    `until` has run; None when every stage ran."""
    commands = read_dvc_yaml(root)["stages"]
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))  # a `python` teacher's module at the project's root
    capsys.readouterr()
    for stage in stage_names(root):
        python, flag, module, *argv = shlex.split(commands[stage]["cmd"])
        assert (python, flag) == ("python", "-m"), commands[stage]["cmd"]
        try:
            importlib.import_module(module).main(argv)
            outcome = Outcome(stage, 0, capsys.readouterr().err)
        except SystemExit as exit_status:
            outcome = Outcome(stage, int(exit_status.code or 0), capsys.readouterr().err)
        if outcome.returncode != 0:
            return outcome
        if stage == until:
            return None
    return None
