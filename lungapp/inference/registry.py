"""Which model is active: the bundled one, an installed one, or one named explicitly.

Order: ``LUNGAPP_MODEL`` (environment, for tests and scripts) > the ``active_model``
setting (chosen in the GUI or with ``lungapp models use``) > the model bundled in
resources/. Installing copies a validated model folder into the user's models folder
(never over an existing one).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lungapp import paths, settings
from lungapp.errors import ModelError
from lungapp.fsutil import make_staging, publish_dir, unique_path
from lungapp.inference.card import CARD_NAME, load_card, verify_onnx


def bundled_model_dir() -> Path | None:
    """resources/model if it holds a card, else None."""
    try:
        d = paths.resources_dir() / "model"
    except FileNotFoundError:
        return None
    return d if (d / CARD_NAME).is_file() else None


def installed_models() -> list[Path]:
    """Model folders (with a card.json) under the user's models folder, sorted by name."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / CARD_NAME).is_file())


def active_model_dir() -> Path:
    """The folder of the model the app should use. Raises ModelError when there is none."""
    env = os.environ.get("LUNGAPP_MODEL")
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise ModelError("LUNGAPP_MODEL does not name a model folder", p)
        return p
    chosen = settings.get("active_model")
    if chosen:
        p = Path(chosen)
        if p.is_dir():
            return p
    bundled = bundled_model_dir()
    if bundled is not None:
        return bundled
    raise ModelError("no model is available: the bundled model is missing and none is installed "
                     "(train one with `lungapp train` and install it with `lungapp models install`)")


def set_active_model(model_dir) -> None:
    """Make ``model_dir`` the active model (validated first); None returns to the bundled one."""
    if model_dir is None:
        settings.set("active_model", None)
        return
    load_card(model_dir)
    settings.set("active_model", str(Path(model_dir).resolve()))


def install_model(src_dir, name: str | None = None) -> Path:
    """Copy a validated model folder into the models folder and return its new path.
    An existing installed model is never overwritten (a new name is chosen). A folder
    whose card lists ONNX exports is copied with them (hashes checked); one without is
    exported to ONNX once, in the installed copy (this imports TensorFlow)."""
    card = load_card(src_dir)
    verify_onnx(src_dir, card)
    root = paths.ensure(paths.models_dir())
    base = name or f"{card.name}-{card.version}"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in base) or "model"
    target = unique_path(root / safe)
    staging = make_staging(target)
    try:
        onnx_files = [o.file for o in card.onnx.values()]
        for f in [CARD_NAME, *card.model_files, *onnx_files, *_extra_files(src_dir)]:
            shutil.copy2(Path(src_dir) / f, staging / f)
        if not card.onnx:
            # Training side (TensorFlow), imported only for a folder that needs it.
            from lungapp.training.export import export_model_folder

            export_model_folder(staging)
        verify_onnx(staging, load_card(staging))
        publish_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _extra_files(src_dir) -> list[str]:
    """Other small files that travel with a model (curves, report)."""
    keep = {".json", ".csv", ".md", ".png", ".txt"}
    return [p.name for p in Path(src_dir).iterdir()
            if p.is_file() and p.suffix in keep and p.name != CARD_NAME]
