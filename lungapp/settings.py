"""JSON settings shared by the CLI and the GUI (active model, last folder, devices...).

Stored at :func:`lungapp.paths.settings_path` and written atomically. A corrupt
settings file is kept aside (``settings.json.bad``) and defaults are used: settings
are never a reason for the app not to start.
"""

from __future__ import annotations

import json
import os

from lungapp import paths
from lungapp.fsutil import atomic_write_json


def load() -> dict:
    p = paths.settings_path()
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        try:
            os.replace(p, p.with_name(p.name + ".bad"))
        except OSError:
            pass
        return {}


def get(key: str, default=None, kind: type | None = None):
    """The setting ``key`` (``default`` when unset). With ``kind``, a value of another type
    (a hand-edited file: ``"active_model": 5``) counts as unset, like a corrupt file."""
    value = load().get(key, default)
    return default if kind is not None and value is not None and not isinstance(value, kind) else value


def set(key: str, value) -> None:  # noqa: A001 - mirrors dict API
    data = load()
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    atomic_write_json(paths.settings_path(), data)
