"""The local store (SQLite): patients, visits, recordings, results, confirmed labels.

No Qt here: the GUI, the CLI and the report read and write through :class:`Store`."""

from lungapp.store.db import ModelId, Store, StoreError, StoreFileError, new_uid, now

__all__ = ["ModelId", "Store", "StoreError", "StoreFileError", "new_uid", "now"]
