"""Render each view of the app to docs/screenshots/*.png, the window at 1280x720 (the
smallest screen the app is made for).

    xvfb-run -a -s "-screen 0 1600x1000x24" \
        .venv/bin/python docs/make_screenshots.py [--model DIR] [--out docs/screenshots]
                                                  [--only record,about,...] [--no-train]

Uses the example recordings in this checkout's resources/examples (the installed
package's when absent) and the active model (or --model).
Runs with a fresh LUNGAPP_HOME so no personal settings or recent files appear; without
a display it renders offscreen. The Record screenshot is taken while recording: an
example recording is played into the PulseAudio null sink (packaging/pulse-null-sink.sh
starts it; its monitor is the default input) so the live spectrogram, waveform and
level meter are moving.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ("review", "review_error", "review_noisy", "record", "train", "about", "models", "patients",
         "compare", "report")
WINDOW = (1280, 720)


def _dataset(folder: Path, patients: int = 6) -> Path:
    """SPRSound-style folder (WAV + JSON sidecar, patient ids in the names): two normal
    and two wheeze recordings per patient, from lungapp.synth."""
    import json

    import soundfile as sf

    from lungapp import synth

    folder.mkdir(parents=True, exist_ok=True)
    k = 0
    for p in range(patients):
        for j, (kind, label) in enumerate([("normal", "Normal")] * 2 + [("wheeze", "CAS")] * 2):
            k += 1
            stem = f"{100 + p}_6.0_{k % 2}_p{1 + j}_{j + 1:02d}"
            x, _, events = synth.render(kind, 6.0, 8000, seed=k)
            sf.write(folder / f"{stem}.wav", x, 8000, subtype="PCM_16")
            (folder / f"{stem}.json").write_text(json.dumps(
                {"record_annotation": label, "event_annotation": events}))
    return folder


class Driver:
    """Drives the window from a script: waits while the event loop runs, takes shots."""

    def __init__(self, out: Path):
        self.out = out

    def wait(self, cond, timeout_s=180.0, what="condition") -> None:
        from lungapp.gui.workers import wait_until

        if not wait_until(cond, timeout_s):
            raise SystemExit(f"make_screenshots: timed out waiting for {what}")

    def settle(self, ms=400) -> None:
        """Run the event loop for ``ms`` milliseconds (animations, repaints)."""
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def shot(self, widget, name) -> None:
        self.settle()
        path = self.out / name
        widget.grab().save(str(path))
        print(path)


def review_shot(win, d: Driver, examples: Path, select: str) -> None:
    """review.png: the examples opened and analysed, ``select`` shown, cursor at 4.2 s."""
    view = win.review
    view.auto_analyse.setChecked(False)
    win.open_paths([str(examples)])
    d.wait(lambda: view.model.rowCount() >= 4, what="the examples to be listed")
    d.wait(lambda: win.ctx.model_state() != "loading", what="the model to load")
    if win.ctx.model_state() != "ready":
        raise SystemExit(f"make_screenshots: no model: {win.ctx.model_message()}")
    view.analyse_all()
    d.wait(lambda: not view._batch, what="Analyse all")
    view.select(str(examples / select))
    d.wait(lambda: view.current_path and view.current_path.endswith(select)
           and view.plots.has_image() and view.plots.timeline_curves() > 0, what="the plots")
    view.player.seek(4.2)
    d.settle(2000)  # the Analyse all progress bar hides itself
    d.shot(win, "review.png")


def review_error_shot(win, d: Driver, tmp: Path) -> None:
    """review_error.png: a damaged file in the list (errors in the row and the status bar)."""
    bad = tmp / "damaged_recording.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(64)))
    win.open_paths([str(bad)])
    d.wait(lambda: win.review.result.state == "error", what="the error")
    d.shot(win, "review_error.png")


def review_noisy_shot(win, d: Driver, examples: Path, tmp: Path) -> None:
    """review_noisy.png: the synthetic normal example with a 2-s burst of handling noise
    added at 6 s (white noise at 8 times the recording's RMS), so the quality check warns
    and the plots hatch the noisy stretch."""
    import numpy as np
    import soundfile as sf

    x, rate = sf.read(examples / "synthetic_normal.wav", dtype="float32")
    rng = np.random.default_rng(0)
    a, b = 6 * rate, 8 * rate
    x[a:b] += rng.standard_normal(b - a).astype(np.float32) * 8 * float(np.std(x))
    path = tmp / "synthetic_normal_bumped.wav"
    sf.write(path, np.clip(x, -1, 1), rate)
    view = win.review
    win.open_paths([str(path)])
    view.select(str(path))
    view.analyse_all()  # the review shot turned "Analyse on select" off
    d.wait(lambda: (e := view.model.entry(str(path))) is not None and e.prediction is not None
           and view.plots.noisy, what="the noisy recording's result")
    d.settle(1000)
    d.shot(win, "review_noisy.png")


def record_shot(win, d: Driver, wav: Path) -> None:
    """record.png: the Record view ~11 s into a recording of ``wav`` played (looped) into
    the null sink, whose monitor is the default input; then Stop (the file is kept in
    the throwaway LUNGAPP_HOME)."""
    import subprocess

    rv = win.record
    win.tabs.setCurrentWidget(rv)
    d.wait(lambda: rv.record_button.isEnabled(), 60, "the input devices")
    rv.site_combo.setCurrentText("Posterior left")
    rv.patient_edit.setText("P-0042")
    rv.duration_combo.setCurrentText("30 s")
    rv.start()
    d.wait(lambda: rv.state in ("recording", "idle"), 60, "the recording to start")
    if rv.state != "recording":
        raise SystemExit(f"make_screenshots: could not record: {rv.status.text()}")
    rv.capture.wait_first_callback(10.0)
    player = subprocess.Popen(["sh", "-c", f"while :; do paplay --device=ci_sink '{wav}' || exit; done"],
                              start_new_session=True)
    try:
        d.settle(11000)  # the 10 s window filled, still moving
        win.statusBar().clearMessage()
        d.shot(win, "record.png")
    finally:
        os.killpg(player.pid, 15)
        player.wait()
    rv.stop()
    d.wait(lambda: rv.state == "idle", 60, "the recording to be saved")
    # After Stop: the whole recording and, once analysed, its timeline.
    d.wait(lambda: rv.stack.currentWidget() is rv.recorded and rv.recorded.timeline_curves() > 0,
           120, "the recording's analysis")
    win.statusBar().clearMessage()
    d.shot(win, "record_stopped.png")


def train_shot(win, d: Driver, tmp: Path) -> None:
    """train.png: a short real run on generated recordings (2 folds x 6 epochs)."""
    data = _dataset(tmp / "train_data")
    tv = win.train
    win.tabs.setCurrentWidget(tv)
    tv.folder.setText(str(data))
    tv.out.setText(str(tmp / "trained_model"))
    tv.preset.setCurrentIndex(tv.preset.findData("recommended"))
    tv.task.setCurrentIndex(tv.task.findData("binary"))   # the generated folder: Normal and CAS
    tv.folds.setValue(2)
    tv.epochs.setValue(6)
    done = []
    tv.trainingFinished.connect(lambda *a: done.append(a))
    tv.start()
    d.wait(lambda: bool(done), timeout_s=900, what="the training run")
    d.shot(win, "train.png")


def about_shot(win, d: Driver) -> None:
    """about.png: About, with the active model's card (shown once the model has loaded)."""
    d.wait(lambda: win.ctx.model_state() != "loading", what="the model to load")
    win.tabs.setCurrentWidget(win.review)
    dlg = win.show_about()
    dlg.resize(640, 620)
    d.shot(dlg, "about.png")
    dlg.close()


def _patient_history(folder: Path) -> None:
    """Patient P-0042 with two visits (synthetic recordings, lungapp.synth): wheezes at two
    sites in January, gone at one of them in February; a clinician confirmed one."""
    import soundfile as sf

    from lungapp import synth
    from lungapp.store import Store

    visits = {"2025-01-10": {"Trachea": "normal", "Anterior left": "wheeze", "Anterior right": "normal",
                             "Posterior left": "wheeze"},
              "2025-02-14": {"Trachea": "normal", "Anterior left": "normal", "Anterior right": "normal",
                             "Posterior left": "wheeze", "Posterior right": "normal"}}
    folder.mkdir(parents=True, exist_ok=True)
    with Store() as s:
        pid = s.add_patient("P-0042", name="Demo Patient", birth_year=2017, sex="female")
        for k, (date, sites) in enumerate(visits.items()):
            vid = s.add_visit(pid, date, "Dr Demo", "Night cough; wheeze on expiration." if not k else "")
            for j, (site, kind) in enumerate(sites.items()):
                x, _, _ = synth.render(kind, 8.0, 8000, seed=10 * k + j)
                sf.write(folder / f"{date}_{j}.wav", x, 8000, subtype="PCM_16")
                uid = s.add_recording(vid, folder / f"{date}_{j}.wav", site=site, device="synthetic",
                                      sample_rate=8000, duration_s=8.0, recorded_at=f"{date}T10:0{j}:00Z")
                if not k and kind == "wheeze":
                    s.confirm_label(uid, "CAS", "Dr Demo")


def patients_shot(win, d: Driver, tmp: Path) -> None:
    """patients.png: the Patients tab, the patient's second visit analysed by the model."""
    _patient_history(tmp / "patient")
    view = win.patients
    win.tabs.setCurrentWidget(view)
    d.wait(lambda: win.ctx.model_state() != "loading", what="the model to load")
    view.refresh()
    view.reanalyse_stale()
    d.wait(lambda: win.ctx.pending() == 0, what="the analyses")
    view.refresh()
    view.visit_list.setCurrentRow(1)
    d.shot(win, "patients.png")


def compare_shot(win, d: Driver) -> None:
    """compare.png: Posterior left now and at the first visit, and its trend."""
    view = win.patients
    view.select_site("Posterior left")
    dlg = view.compare_selected()
    d.wait(lambda: all(p.has_image() for p in dlg.plots), what="the comparison")
    d.shot(dlg, "compare.png")
    dlg.close()


def report_shot(win, d: Driver, tmp: Path) -> None:
    """report.png: the first page of the visit's PDF report, rendered by pdftoppm."""
    import subprocess

    pdf = win.patients.write_report(str(tmp / "report.pdf"))
    subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", pdf,
                    str(d.out / "report")], check=True)
    print(d.out / "report.png")


def _muffled_copy(src: Path, dest: Path) -> Path:
    """A copy of the labelled folder ``src`` as if recorded through a muffled, noisy
    stethoscope: the device-shift test's "other device" (:func:`lungapp.training.augment.
    device_shift`) narrowed to 100-800 Hz, with white noise at -6 dB SNR (synthetic, for the
    Models screenshot's recalibration)."""
    import shutil

    import numpy as np
    import soundfile as sf

    from lungapp.training.augment import device_shift

    shutil.copytree(src, dest)
    rng = np.random.default_rng(0)
    for f in sorted(dest.glob("*.wav")):
        x, rate = sf.read(f)
        y = device_shift(x, rate, rng, snr_db=-6.0, tilt_db_per_octave=0.0, low_hz=100.0, high_hz=800.0)
        sf.write(f, np.clip(y, -1, 1), rate, subtype="PCM_16")
    return dest


def models_shot(win, d: Driver, tmp: Path) -> None:
    """models.png: Analysis > Models…, the bundled model recalibrated to a synthetic
    "muffled, noisy stethoscope" folder (24 recordings of 6 patients): the held-out check's
    figures and the installed result, not yet in use."""
    from lungapp.gui import models_dialog

    d.wait(lambda: win.ctx.model_state() != "loading", what="the model to load")
    dlg = win.show_models()
    dlg.resize(900, 340)
    if dlg.rows:
        dlg.table.selectRow(0)
        clinic = _muffled_copy(_dataset(tmp / "synthetic"), tmp / "my_stethoscope")
        ask_use = models_dialog.ask_use
        models_dialog.ask_use = lambda parent, text: False  # the shot shows it not yet used
        try:
            dlg.start_recalibration(clinic)
            d.wait(lambda: dlg.recal_task is None, what="the recalibration")
        finally:
            models_dialog.ask_use = ask_use
    d.shot(dlg, "models.png")
    dlg.close()


def _parse_args():
    """(args, the set of screenshots wanted)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the active model)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--no-train", action="store_true", help="skip the Train screenshot (a real run)")
    ap.add_argument("--select", default="synthetic_wheeze.wav",
                    help="example file shown in the Review screenshot")
    ap.add_argument("--only", default=",".join(SHOTS),
                    help="comma-separated screenshots to make (default: all): " + ", ".join(SHOTS))
    ap.add_argument("--play", default="synthetic_wheeze_and_crackles.wav",
                    help="example file played into the null sink for the Record screenshot")
    args = ap.parse_args()
    want = {w.strip().removesuffix(".png") for w in args.only.split(",") if w.strip()}
    if want - set(SHOTS):
        ap.error(f"unknown screenshot(s) {sorted(want - set(SHOTS))}; choose from {', '.join(SHOTS)}")
    if args.no_train:
        want.discard("train")
    return args, want


def _prepare_environment(args, want: set[str]) -> None:
    """The null sink (for record.png, before PortAudio starts with the app, so the sink's
    monitor is listed), the model, a fresh LUNGAPP_HOME, a display or offscreen."""
    if "record" in want:
        import subprocess

        sink = subprocess.run(["sh", str(ROOT / "packaging" / "pulse-null-sink.sh")],
                              capture_output=True, text=True)
        if sink.returncode != 0:
            raise SystemExit("make_screenshots: record.png needs the PulseAudio null sink: "
                             + sink.stderr.strip())
    if args.model:
        os.environ["LUNGAPP_MODEL"] = str(Path(args.model).resolve())
    os.environ["LUNGAPP_HOME"] = tempfile.mkdtemp(prefix="lungapp_shots_")
    if not any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    args, want = _parse_args()
    _prepare_environment(args, want)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from lungapp.gui import workers
    from lungapp.gui.app import create_application, create_window
    from lungapp.paths import resources_dir

    app = create_application([])  # noqa: F841 - keeps the QApplication alive
    examples = ROOT / "resources" / "examples"
    if not examples.is_dir():
        examples = resources_dir() / "examples"
    win = create_window([])
    win.resize(*WINDOW)
    d = Driver(out)
    tmp = Path(tempfile.mkdtemp())
    if "review" in want:
        review_shot(win, d, examples, args.select)
    if "review_error" in want:
        review_error_shot(win, d, tmp)
    if "review_noisy" in want:
        review_noisy_shot(win, d, examples, tmp)
    if "record" in want:
        record_shot(win, d, examples / args.play)
    if "train" in want:
        train_shot(win, d, tmp)
    if "about" in want:
        about_shot(win, d)
    if want & {"patients", "compare", "report"}:
        patients_shot(win, d, tmp)
        if "compare" in want:
            compare_shot(win, d)
        if "report" in want:
            report_shot(win, d, tmp)
    if "models" in want:
        models_shot(win, d, tmp)
    win.close()
    workers.wait_all(5000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
