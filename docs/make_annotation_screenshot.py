"""Render docs/screenshots/annotation.png: the Review view with a recording's labelled
regions on the waveform and spectrogram, the model's timeline, a suggested region and the
labels panel.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_annotation_screenshot.py

Works on a copy of an example recording in a temporary folder (its sidecar is edited there,
never in resources/), with a fresh LUNGAPP_HOME and the active model.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "synthetic_wheeze_and_crackles"


def _driver_module():
    spec = importlib.util.spec_from_file_location("make_screenshots", ROOT / "docs" / "make_screenshots.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def annotate(win, d, wav: Path) -> None:
    """Open ``wav``, analyse it, label a few regions, add the model's suggestions."""
    view = win.review
    view.settings.setValue("annotation/annotator", "anna")
    win.open_paths([str(wav)])
    d.wait(lambda: win.ctx.model_state() != "loading", what="the model to load")
    d.wait(lambda: view.annotation.layer.doc is not None and view.plots.has_image(), what="the plots")
    view.analyse_selected()
    d.wait(lambda: view.plots.timeline_curves() > 0, what="the analysis")
    layer = view.annotation.layer
    for region in list(layer.doc.regions)[3:]:  # keep the first three expert events
        layer.select(region.id)
        layer.delete_selected()
    wheeze = layer.add(6.5, 7.4, "Wheeze")
    layer.change(wheeze, note="expiratory, monophonic")
    view.annotation.panel.annotator.setText("anna")
    layer.suggest(view.model.entries[0].prediction.windows, 0.6)  # a draft or two, dashed
    layer.set_record_label("CAS & DAS")
    layer.select(wheeze)
    view.plots.wave.setXRange(0, 9, padding=0)


def main() -> int:
    mod = _driver_module()
    os.environ["LUNGAPP_HOME"] = tempfile.mkdtemp(prefix="lungapp_shots_")
    if not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from lungapp.gui import workers
    from lungapp.gui.app import create_application, create_window
    from lungapp.paths import resources_dir

    app = create_application([])  # noqa: F841 - keeps the QApplication alive
    tmp = Path(tempfile.mkdtemp())
    for suffix in (".wav", ".json"):
        shutil.copy(resources_dir() / "examples" / f"{NAME}{suffix}", tmp)
    win = create_window([])
    win.resize(1500, 860)
    out = ROOT / "docs" / "screenshots"
    d = mod.Driver(out)
    win.review.auto_analyse.setChecked(False)
    annotate(win, d, tmp / f"{NAME}.wav")
    win.review.splitter.setSizes([420, 640, 440])
    d.settle(1500)
    d.shot(win, "annotation.png")
    win.close()
    workers.wait_all(5000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
