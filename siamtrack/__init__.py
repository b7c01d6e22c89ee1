"""siamtrack: Siamese visual object tracking (SiamFC / SiamRPN) on CPU and GPU."""
from .api import load_tracker, make_tracker, load_model
from .errors import SiamtrackError
from .match import Match, MatchOptions, match
from .trackers.base import TrackResult, Tracker
from .zoo import list_models

__version__ = "0.1.0"

__all__ = ["load_tracker", "load_model", "make_tracker", "list_models", "Tracker", "TrackResult",
           "SiamtrackError", "match", "Match", "MatchOptions", "__version__"]
