"""One exception family for everything a user can get wrong.

The CLI turns any `SiamtrackError` into one line on stderr and exit code 2; the API raises the specific subclass so
callers can tell a missing file from a bad box without parsing messages.
"""


class SiamtrackError(Exception):
    """Base class of every error siamtrack raises on bad input."""


class SourceError(SiamtrackError):
    """A frame source (file, folder, camera) is missing, empty or unreadable."""


class FrameError(SiamtrackError):
    """A single frame cannot be decoded or used."""


class BoxError(SiamtrackError):
    """An initial box is not finite, has no area or lies outside the frame."""


class CheckpointError(SiamtrackError):
    """A weights file is absent, truncated, not a siamtrack checkpoint or from another model."""


class ConfigError(SiamtrackError):
    """A config file or model name is unknown or malformed."""


class OutputError(SiamtrackError):
    """An output file would overwrite something the user has, or cannot be written."""


class DatasetError(SiamtrackError):
    """A dataset root has no recognisable layout or is inconsistent."""
