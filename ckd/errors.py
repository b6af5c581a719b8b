"""User-facing errors: one line that names the parameter or file and what is allowed."""


class CkdError(Exception):
    """An error the user can fix; stage entry points print it as one line and exit non-zero."""


class ConfigError(CkdError):
    """A parameter out of range or of the wrong kind."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class BudgetExhausted(CkdError):
    """The store has no budget left for samples that still need an answer."""


class TeacherError(CkdError):
    """The teacher does not fit the data or answered something unusable."""


class QualityError(CkdError):
    """Great Expectations rejected the teacher outputs."""
