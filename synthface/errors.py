"""The one error type users see.

Anything raised as ``SynthError`` is a problem with the user's input or environment, and the
CLI prints its message as a single line (``error: ...``) and exits non-zero, without a traceback.
Messages say what was wrong and what to do about it. Everything else is a bug and keeps its
traceback.
"""


class SynthError(Exception):
    """A user-facing error whose message is one line: what was wrong, and what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class BuildFailed(SynthError):
    """Some shards still failed after their retries; the completed ones are kept."""

    exit_code = 3
