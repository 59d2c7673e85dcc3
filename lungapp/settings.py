"""JSON settings shared by the CLI and the GUI (active model, last folder, devices...).

Stored at :func:`lungapp.paths.settings_path` and written atomically. A settings file that
cannot be read (not JSON, not an object) is kept aside (``settings.json.bad``, or
``.bad-2``... so an earlier one is not lost) and defaults are used: settings are never a
reason for the app not to start. That fallback is never silent either: :func:`notice` says
what happened, and the model's status line and ``predict`` print it.
"""

from __future__ import annotations

import json
import os

from lungapp import paths
from lungapp.errors import LungappError
from lungapp.fsutil import atomic_write_json

_notices: dict[str, str] = {}  # settings file -> what happened to it (this process)


def notice() -> str | None:
    """One line when this process found the settings file unreadable and set it aside (the
    defaults, among them the bundled model, are in use, until a setting is saved again);
    None otherwise."""
    return _notices.get(str(paths.settings_path()))


def _set_aside(p, why: str) -> None:
    bad, n = p.with_name(p.name + ".bad"), 2
    while os.path.lexists(bad):
        bad, n = p.with_name(f"{p.name}.bad-{n}"), n + 1
    try:
        os.replace(p, bad)
        kept = f"kept as {bad.name}"
    except OSError:
        kept = "left as it is"
    _notices[str(p)] = (f"{p}: the settings could not be read ({why}); {kept}, and the defaults "
                        "are in use (the bundled model, no recordings folder chosen)")


def load() -> dict:
    p = paths.settings_path()
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as err:
        _set_aside(p, getattr(err, "strerror", None) or str(err) or type(err).__name__)
        return {}
    if not isinstance(data, dict):
        _set_aside(p, f"a JSON {type(data).__name__}, not an object")
        return {}
    return data


def get(key: str, default=None, kind: type | None = None):
    """The setting ``key`` (``default`` when unset). With ``kind``, a value of another type
    (a hand-edited file: ``"active_model": 5``) counts as unset, like a corrupt file."""
    value = load().get(key, default)
    return default if kind is not None and value is not None and not isinstance(value, kind) else value


def set(key: str, value) -> None:  # noqa: A001 - mirrors dict API
    """Save one setting. Raises LungappError naming the settings file when it cannot be
    written (a read-only or full disk): the change is then not kept."""
    data = load()
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    try:
        atomic_write_json(paths.settings_path(), data)
    except OSError as err:
        raise LungappError(f"cannot save the settings ({err.strerror or err}); the change was not kept",
                           paths.settings_path()) from None
    _notices.pop(str(paths.settings_path()), None)  # chosen anew: no longer the defaults
