"""The few exceptions the library raises on purpose; the CLI and the API translate them."""


class QAError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class ConfigError(QAError):
    """config.yaml is missing, unreadable or holds a bad value."""


class IndexMissingError(QAError):
    """No index has been built yet where the config points."""


class IndexMismatchError(QAError):
    """The index on disk was built with other settings (another model, another chunker)."""


class InvalidQuestionError(QAError):
    """The question is empty, too long or not text."""


class DocumentNotFoundError(QAError):
    """No document with that id is in the index."""


class IndexLockedError(QAError):
    """Another process is writing to the index and did not finish in time."""


class IndexDamagedError(QAError):
    """The index files are unreadable or disagree with each other."""
