"""Where the app writes: settings, installed models, database, recordings.

``LUNGAPP_HOME`` moves everything to one folder (tests, portable installs); otherwise
the platform's user folders from platformdirs are used. Nothing here creates folders
on import; call :func:`ensure` when about to write.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "lungapp"


def home() -> Path | None:
    """The ``LUNGAPP_HOME`` folder, or None when it is not set."""
    value = os.environ.get("LUNGAPP_HOME")
    return Path(value).expanduser().resolve() if value else None


def _platform(kind: str) -> Path:
    import platformdirs

    fn = {"data": platformdirs.user_data_dir, "config": platformdirs.user_config_dir,
          "documents": platformdirs.user_documents_dir}[kind]
    if kind == "documents":
        return Path(fn()) / "lungapp"
    return Path(fn(APP_NAME, appauthor=False))


def data_dir() -> Path:
    h = home()
    return h if h else _platform("data")


def config_dir() -> Path:
    h = home()
    return h / "config" if h else _platform("config")


def models_dir() -> Path:
    """Installed (user-trained) models, one sub-folder each."""
    return data_dir() / "models"


def recordings_dir() -> Path:
    """Where new recordings go: the folder the user chose (the ``recordings_folder``
    setting, from the Record tab), else ``recordings`` in LUNGAPP_HOME or the user's
    documents."""
    from lungapp import settings  # settings imports paths: imported here, when called

    chosen = settings.get("recordings_folder", kind=str)
    if chosen:
        return Path(chosen).expanduser()
    h = home()
    return h / "recordings" if h else _platform("documents") / "recordings"


def exports_dir() -> Path:
    """Where exported results go by default: outside every data folder (a CSV saved
    among recordings makes that folder look like a CSV layout to ``train``)."""
    h = home()
    return h / "exports" if h else _platform("documents") / "exports"


def database_path() -> Path:
    return data_dir() / "lungapp.sqlite3"


def settings_path() -> Path:
    """JSON settings shared by the CLI and the GUI (active model, last folder...)."""
    return config_dir() / "settings.json"


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def all_paths() -> dict[str, str]:
    return {
        "data": str(data_dir()),
        "config": str(config_dir()),
        "settings": str(settings_path()),
        "models": str(models_dir()),
        "recordings": str(recordings_dir()),
        "exports": str(exports_dir()),
        "database": str(database_path()),
    }


def resources_dir() -> Path:
    """The bundled resources (model, examples, icons): the package ``lungapp.resources``,
    found by :mod:`importlib.resources` wherever it is installed (a wheel, an editable
    install mapping it to ``<repo>/resources``, or a PyInstaller bundle)."""
    from importlib.resources import files

    try:
        root = Path(str(files("lungapp.resources")))
    except ModuleNotFoundError:
        root = None
    if root is None or not root.is_dir():
        raise FileNotFoundError("lungapp's resources (package lungapp.resources) are not installed")
    return root
