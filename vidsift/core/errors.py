"""Errors that name what went wrong, so a user can act on a DLQ message or a summary line."""


class BadInputError(ValueError):
    """The input itself is unusable (not a video, truncated, no video stream...).

    Retrying cannot help; the stage records the reason once where users look (an error
    record in the analytics bucket), counts it on the BadInputs metric and acknowledges the
    message: a retry or the dead-letter queue would only repeat the same answer (issue 26).
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class S3AccessError(RuntimeError):
    """A service could not read an object that exists (permissions, a KMS key policy, another
    region): the configuration is wrong, not the input, so the message is retried and, if it
    stays wrong through every delivery, its reason is recorded before the DLQ."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class ConfigError(RuntimeError):
    """A setting is missing or malformed: the function cannot do anything useful. Raised by
    the settings parsers (vidsift.settings, and the core's ``from_mapping`` parsers), naming
    the variable, before any record is processed (vidsift.stages.startup)."""
