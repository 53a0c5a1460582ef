"""What a location an event names means, decided by one function: ``locate``.

Why a package of its own, at the bottom: an event decides what the worker reads, so the meaning of a
location must be decided once and the same way wherever a location is met: by the readers
(``worker.snapshot``), by the config's ``snapshot_prefixes`` (``worker.settings``, normalised when the
config is loaded) and by the service's check of every event (``worker.service``). A second parser
anywhere is a second meaning, and the gap between two meanings is how an event reads what it must not.

- ``location``: ``locate(uri) -> Location``: parse, percent-decode once, normalise ``.``/``..``/``//``,
  resolve symbolic links of local paths; ``Location.is_under(prefix)`` compares whole segments.
- ``prefixes``: the allowed prefixes, normalised the same way, and the verdict on one location.
- ``globs``: a segment's ``triggers``, globs matched against decoded, normalised locations.

May import: ``worker.privacy`` (to mask credentials in the locations its messages show).
"""

from worker.locations.globs import LocationGlob, compile_glob, decoded_text
from worker.locations.location import Location, LocationError, locate
from worker.locations.prefixes import OutsidePrefixes, Prefixes, prefix_note

__all__ = ["Location", "LocationError", "LocationGlob", "OutsidePrefixes", "Prefixes", "compile_glob", "decoded_text",
           "locate", "prefix_note"]
