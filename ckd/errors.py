"""User-facing errors: one line that names the parameter or file and what is allowed."""


class CkdError(Exception):
    """An error the user can fix; stage entry points print it as one line and exit non-zero."""


class ConfigError(CkdError):
    """A parameter out of range or of the wrong kind."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class ClassNamesNeeded(CkdError):
    """A source without labels and no `data.class_names`: the teacher may declare its classes instead."""


class TeacherError(CkdError):
    """The teacher does not fit the data or answered something unusable."""


class QualityError(CkdError):
    """Great Expectations rejected the teacher outputs."""


# A stage that rejects its input exits with USER_ERROR_EXIT. `dvc repro` turns every failure into 255, so a
# caller that must tell bad input from a crash (the Prefect flow retries only crashes) names a file in this
# environment variable (DVC passes it on), where the stage writes its exit status.
USER_ERROR_EXIT = 2
STATUS_FILE_ENV = "CKD_STAGE_STATUS_FILE"


def record_exit_status(status: int) -> None:
    """Write `status` to the file named by $CKD_STAGE_STATUS_FILE, when a caller asked for it."""
    import os

    target = os.environ.get(STATUS_FILE_ENV)
    if target:
        with open(target, "w") as handle:
            handle.write(f"{status}\n")
