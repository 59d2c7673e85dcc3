"""Which model is active: the bundled one, an installed one, or one named explicitly.

Order: ``LUNGAPP_MODEL`` (environment, for tests and scripts) > the ``active_model``
setting (chosen in the GUI or with ``lungapp models use``) > the model bundled in
resources/. Installing copies a validated model folder into the user's models folder
(never over an existing one).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from lungapp import paths, settings
from lungapp.errors import ModelError
from lungapp.fsutil import check_output_dir, make_staging, recover_swap, unique_path
from lungapp.inference.card import CARD_NAME, ModelCard, load_card, verify_onnx


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
    chosen = settings.get("active_model", kind=str)
    if chosen:
        p = Path(chosen)
        recover_swap(p)  # a replacement of it a killed process left half done
        if p.is_dir():
            return p
    bundled = bundled_model_dir()
    if bundled is not None:
        return bundled
    raise ModelError("no model is available: the bundled model is missing and none is installed "
                     "(train one with `lungapp train` and install it with `lungapp models install`)")


def missing_active_model() -> str | None:
    """One line when the chosen active model's folder is gone, so the bundled model is used
    in its place (a fallback must never be silent); None otherwise."""
    chosen = settings.get("active_model", kind=str)
    if os.environ.get("LUNGAPP_MODEL"):
        return None
    if settings.notice():  # an unreadable settings file: whatever it chose is not known
        return settings.notice()
    if not chosen or Path(chosen).is_dir():
        return None
    return (f"{chosen}: the active model's folder is missing; using the bundled model instead "
            "(choose another with `lungapp models use`)")


def set_active_model(model_dir) -> None:
    """Make ``model_dir`` the active model (validated first: its card, and its ONNX files
    against the card's hashes, so that a folder no prediction could run is refused and the
    setting kept); None returns to the bundled one."""
    if model_dir is None:
        settings.set("active_model", None)
        return
    checked_card(model_dir)
    settings.set("active_model", str(Path(model_dir).resolve()))


def env_override() -> str | None:
    """One line when ``LUNGAPP_MODEL`` is set: the active-model setting is then not used."""
    env = os.environ.get("LUNGAPP_MODEL")
    if not env:
        return None
    return (f"LUNGAPP_MODEL is set ({env}): that model is used while it is set, whatever the "
            "active-model setting says")


MAX_NAME = 100  # characters of an installed model's folder name


def safe_model_name(base: str) -> str:
    """A folder name for a model named ``base``: letters, digits, ``._-`` only, no ``..``,
    no leading dot (a hidden folder ``models list`` would not show) and no separator."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)
    name = re.sub(r"\.{2,}", "_", name).lstrip(".")[:MAX_NAME]  # room for -N and a staging suffix
    return name or "model"


def install_model(src_dir, name: str | None = None, notes: list[str] | None = None) -> Path:
    """Copy a validated model folder into the models folder and return its new path.
    An existing installed model is never overwritten (a new name is chosen). A folder
    whose card lists ONNX exports is copied with them (hashes checked); one without is
    exported to ONNX once, in the installed copy (this imports TensorFlow). The copy is
    then loaded as ``predict`` would load it, so a model it would refuse (custom code,
    a corrupt file, wrong shapes) is refused here. Only regular files are copied: a
    symbolic link among the model's files refuses the folder; other links are skipped,
    with a line added to ``notes``."""
    src_dir = Path(src_dir)
    card = load_card(src_dir)
    verify_onnx(src_dir, card)
    root = paths.models_dir()
    if root.exists() and not root.is_dir():
        raise ModelError("is a file, not a folder: the models folder cannot be made here", root)
    try:
        paths.ensure(root)
    except OSError as exc:
        raise ModelError(f"cannot make the models folder ({exc.strerror or exc})", root) from None
    target = unique_path(root / safe_model_name(name or f"{card.name}-{card.version}"))
    check_output_dir(target, data_dirs=[src_dir], report=None if notes is None else notes.append)
    onnx_files = [o.file for o in card.onnx.values()]
    extras, skipped = _extra_files(src_dir)
    if notes is not None:
        notes += [f"{p}: a symbolic link, not copied" for p in skipped]
    staging = make_staging(target)
    try:
        for f in [CARD_NAME, *card.model_files, *onnx_files, *extras]:
            _copy_regular(src_dir / f, staging / f, root)
        for f in card.model_files:
            _check_keras_file(staging / f, src_dir / f)
        if not card.onnx:
            # Training side (TensorFlow), imported only for a folder that needs it.
            from lungapp.training.export import export_model_folder

            export_model_folder(staging)
        verify_onnx(staging, load_card(staging))
        _load_as_predict_would(staging)
        target = _publish_new(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _publish_new(staging: Path, target: Path) -> Path:
    """Move ``staging`` to ``target``, or to the next free ``target-N`` when another install
    took the name meanwhile (never over a model: rename fails on a folder that holds one)."""
    while True:
        try:
            if target.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(target))
            os.rename(staging, target)
            return target
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            target = unique_path(target)


def _check_keras_file(path: Path, src: Path) -> None:
    """A ``.keras`` file is a zip archive (Keras's format): a damaged one is refused at
    install, not at the first training or Keras prediction, naming the file given."""
    if path.suffix != ".keras":
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelError(f"is not a readable Keras model file ({exc})", src) from None
    if bad is not None or "config.json" not in names:
        raise ModelError("is not a readable Keras model file (a damaged archive, or no "
                         "config.json in it)", src)


def _copy_regular(src: Path, dst: Path, root: Path) -> None:
    """Copy ``src`` if it is a regular file (never through a symbolic link: a model folder
    must not smuggle /etc/shadow into the models folder). A copy that fails to be written
    names the models folder ``root`` (a full disk is the place's problem, not the file's)."""
    try:
        mode = os.lstat(src).st_mode
    except OSError as exc:
        raise ModelError(f"cannot read it ({exc.strerror or exc})", src) from None
    if not stat.S_ISREG(mode):
        raise ModelError("is a symbolic link or not a regular file: a model folder is copied "
                         "as regular files only", src)
    try:
        with open(src, "rb"):
            pass
    except OSError as exc:
        raise ModelError(f"cannot read it ({exc.strerror or exc})", src) from None
    try:
        shutil.copyfile(src, dst, follow_symlinks=False)
    except OSError as exc:
        raise ModelError(f"cannot install the model here ({exc.strerror or exc}); nothing was "
                         "installed", root) from None


def _load_as_predict_would(model_dir: Path) -> None:
    """Load the model as ``predict`` runs it (ONNX Runtime sessions, their shapes against
    the card); raises ModelError. (A folder without ONNX exports had its Keras files loaded
    in safe mode by the export just before.)"""
    from lungapp.inference.predictor import Predictor

    Predictor.load(model_dir, runtime="onnx")


def _extra_files(src_dir) -> tuple[list[str], list[Path]]:
    """Other small files that travel with a model (curves, report), and the symbolic
    links among them (skipped)."""
    keep = {".json", ".csv", ".md", ".png", ".txt"}
    files, links = [], []
    for p in Path(src_dir).iterdir():
        if p.suffix in keep and p.name != CARD_NAME:
            if p.is_symlink():
                links.append(p)
            elif p.is_file():
                files.append(p.name)
    return files, links


def checked_card(model_dir) -> ModelCard:
    """The card of ``model_dir`` with its ONNX files checked against the card's hashes:
    what `models list` and the Models dialog offer (raises ModelError)."""
    card = load_card(model_dir)
    verify_onnx(model_dir, card)
    return card


def model_folders() -> list[tuple[Path, str | None]]:
    """Every folder under the user's models folder (hidden ones too), sorted by name, with
    why it is not a usable model (None: it is one)."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.is_symlink():
            continue
        if ".staging-" in p.name:
            out.append((p, "an unfinished install (a staging folder; removed by the next install "
                           "once its process has ended)"))
            continue
        try:
            checked_card(p)
            out.append((p, None))
        except ModelError as exc:
            out.append((p, exc.problem))
    return out
