"""The Record view under Xvfb: record from the PulseAudio null sink's monitor while a
known signal plays, see the live spectrogram move, Stop, see the analysis result from
the tiny real model; no device / no PortAudio; interrupted recordings offered back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui

RATE = 48000




@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir):
    from lungapp.inference.predictor import Predictor

    return Predictor.load(tiny_model_dir)


def make_view(qtbot, predictor=None):
    from lungapp.gui.context import AppContext
    from lungapp.gui.record_view import RecordView

    ctx = AppContext()
    if predictor is not None:
        ctx.set_predictor(predictor)
    view = RecordView(ctx)
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    return ctx, view


def played_signal(seconds=4.0) -> np.ndarray:
    """Band-limited breath-like noise with a 400 Hz wheeze-like tone."""
    rng = np.random.default_rng(3)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    from scipy.signal import butter, sosfilt

    sos = butter(4, [100, 1500], btype="band", fs=RATE, output="sos")
    x = sosfilt(sos, rng.standard_normal(n)) * 0.2 + 0.2 * np.sin(2 * np.pi * 400 * t)
    return (x / np.max(np.abs(x)) * 0.6).astype(np.float32)


@pytest.mark.audio
@pytest.mark.slow
def test_record_see_spectrogram_move_stop_see_result(qtbot, pulse_sink, tiny_predictor, tmp_path):
    from lungapp import paths

    ctx, view = make_view(qtbot, tiny_predictor)
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=20000)
    assert view.selected_device() is not None
    view.duration_combo.setCurrentText("Until stopped")
    view.site_combo.setCurrentText("Anterior right")
    view.patient_edit.setText("GUI-1")
    wav = tmp_path / "breath.wav"
    sf.write(wav, played_signal(), RATE, subtype="FLOAT")

    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.state == "recording", timeout=20000)
    assert view.capture.wait_first_callback(5.0)
    before = view.live.image_data()
    player = subprocess.Popen(["paplay", f"--device={pulse_sink}", str(wav)])
    try:
        # The spectrogram moves: the image changes and shows energy well above the floor
        # (uint8 0..255 spans min_db..max_db; 40 dB above the floor).
        cfg = view.monitor.cfg
        above = 255 * 40 / (cfg.max_db - cfg.min_db)
        def lit():
            img = view.live.image_data()
            return img is not None and float(img.max()) > above

        deadline = time.monotonic() + 15
        while not lit() and time.monotonic() < deadline:
            qtbot.wait(50)
        assert lit(), (f"no signal in the live spectrogram: paplay rc={player.poll()}, "
                       f"samples={view.monitor.samples_total}, peak={view.monitor.peak:.4f}, "
                       f"callbacks={view.capture.callbacks if view.capture else None}, "
                       f"state={view.state}, status={view.status.text()!r}")
        first = view.live.image_data()
        assert not np.array_equal(first, before)
        drawn = view.live.frames_drawn
        qtbot.wait(500)
        assert not np.array_equal(view.live.image_data(), first)  # still scrolling
        assert view.live.frames_drawn > drawn
        assert view.meter.bar.peak_db > -30  # the level meter sees the signal
        assert view.elapsed_label.text() != "00:00.0"
    finally:
        player.wait(30)
    with qtbot.waitSignal(ctx.recordingFinished, timeout=20000) as rec_sig, \
            qtbot.waitSignal(ctx.analysisFinished, timeout=120000) as ana_sig:
        qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    path = Path(rec_sig.args[0])
    assert path.parent == paths.recordings_dir() and path.suffix == ".wav" and path.exists()
    assert not Path(str(path) + ".partial").exists()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["site"] == "Anterior right" and meta["patient_id"] == "GUI-1"
    assert meta["sample_rate"] == view.last_result.rate and meta["status"] == "complete"
    assert sf.info(path).duration > 3.0
    assert view.last_result.overflows == 0 and view.last_result.lost_frames == 0
    assert ana_sig.args[0] == str(path)
    # The result is on screen, quality verdict included.
    assert view.result_panel.state in ("normal", "abnormal", "poor quality")
    assert view.result_panel.quality.text().startswith("Quality check")
    assert view.state == "idle" and view.record_button.text() == "● Record"
    # The device choice is remembered.
    assert view.settings.value("record/site") == "Anterior right"


def test_no_input_device_says_so_and_disables_record(qtbot, monkeypatch):
    from lungapp.audio import devices

    monkeypatch.setattr(devices, "list_input_devices", lambda: [])
    ctx, view = make_view(qtbot)
    qtbot.waitUntil(lambda: "No audio input device found" in view.status.text(), timeout=10000)
    assert not view.record_button.isEnabled()
    qtbot.mouseClick(view.record_button, Qt.MouseButton.LeftButton)
    assert view.state == "idle"


def test_missing_portaudio_says_so(qtbot, monkeypatch):
    from lungapp.audio import devices

    def boom():
        raise devices.DeviceError("PortAudio library not available (PortAudio library not found); "
                                  "recording is disabled")

    monkeypatch.setattr(devices, "list_input_devices", boom)
    ctx, view = make_view(qtbot)
    qtbot.waitUntil(lambda: "Recording unavailable" in view.status.text(), timeout=10000)
    assert "PortAudio library not available" in view.status.text()
    assert not view.record_button.isEnabled()


def test_interrupted_recording_is_offered_and_recovered(qtbot, monkeypatch):
    from lungapp import paths
    from lungapp.audio import devices
    from lungapp.audio.recorder import make_sidecar

    monkeypatch.setattr(devices, "list_input_devices", lambda: [])
    folder = paths.ensure(paths.recordings_dir())
    partial = folder / "20260101-101010_K9_Tc.wav.partial"
    x = (0.3 * np.sin(np.arange(RATE * 2) * 0.05)).astype(np.float32)
    sf.write(partial, x, RATE, format="WAV", subtype="PCM_24")
    raw = bytearray(partial.read_bytes())
    d = raw.index(b"data") + 8
    raw[4:8] = (8).to_bytes(4, "little")
    raw[d - 4:d] = bytes(4)  # as a killed writer leaves it
    partial.write_bytes(bytes(raw))
    side = folder / "20260101-101010_K9_Tc.json"
    side.write_text(json.dumps(make_sidecar(device="steth", sample_rate=RATE, site="Trachea",
                                            patient_id="K9")))
    ctx, view = make_view(qtbot)
    qtbot.waitUntil(lambda: view.banner.isVisible(), timeout=5000)
    assert "1 recording(s) were interrupted" in view.banner_text.text()
    assert "20260101-101010_K9_Tc.wav" in view.banner_text.text()
    with qtbot.waitSignal(ctx.recordingFinished, timeout=10000) as sig:
        qtbot.mouseClick(view.recover_button, Qt.MouseButton.LeftButton)
    out = Path(sig.args[0])
    assert out == folder / "20260101-101010_K9_Tc.wav" and not partial.exists()
    assert sf.info(out).frames == len(x)
    assert not view.banner.isVisible()
    assert json.loads(side.read_text())["status"] == "recovered"


def test_level_meter_warns_on_clipping(qtbot):
    from lungapp.gui.level_meter import LevelMeter

    m = LevelMeter()
    qtbot.addWidget(m)
    m.set_level(0.5, 0.2, clipped=False)
    assert not m.clipping and m.clip_label.text() == ""
    m.set_level(1.0, 0.7, clipped=True)
    assert m.clipping and m.clip_label.text() == "CLIPPING"
    m.set_level(0.1, 0.05, clipped=False)  # held for a moment
    assert m.clipping


def test_live_monitor_matches_the_batch_spectrogram():
    """The live picture is the core's spectrogram of the newest audio, whatever the
    block sizes the device delivered."""
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.ringbuffer import RingBuffer
    from lungapp.dsp.spectrogram import spectrogram

    rate = 16000
    x = (0.2 * np.random.default_rng(0).standard_normal(rate * 3)).clip(-0.9, 0.9).astype(np.float32)
    x[1000] = 1.0  # one clipped sample
    ring = RingBuffer(rate * 5)
    mon = LiveMonitor(ring, rate, seconds=2.0, fmax=4000, points=200)
    pos = 0
    for n in (100, 4000, 37, 9000, 20000, 1, 14862):
        ring.write(x[pos:pos + n])
        pos += n
        mon.update()
    assert pos == len(x)
    ref = spectrogram(x, mon.cfg)[:, : mon.n_bins]
    img = mon.image()
    assert img.shape == (mon.n_cols, mon.n_bins)
    np.testing.assert_allclose(img, ref[-mon.n_cols:], atol=1e-3)
    img8 = mon.image8()
    expect8 = np.clip((img - mon.cfg.min_db) * 255 / (mon.cfg.max_db - mon.cfg.min_db) + 0.5, 0, 255)
    assert np.max(np.abs(img8.astype(float) - np.floor(expect8))) <= 1
    t, y = mon.envelope()
    assert len(t) == len(y) == 2 * mon.points
    tail = x[-mon.points * mon.decim:].reshape(mon.points, mon.decim)
    np.testing.assert_allclose(y[0::2][-10:], tail.min(axis=1)[-10:])
    np.testing.assert_allclose(y[1::2][-10:], tail.max(axis=1)[-10:])
    assert mon.clipped == 1 and mon.lost_frames == 0


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="True is immortal from Python 3.12")
def test_live_view_can_run_for_hours_without_exhausting_references_to_true(qtbot):
    """PySide6 6.12.0 drops a reference to True at every Python-side Signal.emit();
    pyqtgraph emits several per redraw, so on Python 3.11 the app aborts with
    "bool_dealloc" after a few minutes of live view (seen in bench_record.py). Each
    redraw must leave True's reference count as it was."""
    from lungapp.audio.live import LiveMonitor
    from lungapp.audio.ringbuffer import RingBuffer
    from lungapp.gui.live_spectrogram import LiveSpectrogram

    ring = RingBuffer(RATE * 5)
    mon = LiveMonitor(ring, RATE)
    w = LiveSpectrogram()
    qtbot.addWidget(w)
    w.resize(800, 400)
    w.show()
    qtbot.waitExposed(w)
    w.attach(mon)
    rng = np.random.default_rng(0)
    from PySide6.QtWidgets import QApplication
    before = sys.getrefcount(True)
    for _ in range(100):
        ring.write((0.1 * rng.standard_normal(1440)).astype(np.float32))
        mon.update()
        w.refresh()
        QApplication.processEvents()
    lost = before - sys.getrefcount(True)
    import PySide6
    assert lost < 20, (f"{lost} references to True lost in 100 redraws with PySide6 "
                       f"{PySide6.__version__}: the app would abort after a few minutes of "
                       "recording; use a PySide6 without this bug (6.11.3 is fine; 6.12.0 is not)")


# --- devices come and go ------------------------------------------------------------------

def fake_device(index, name, hostapi="ALSA", channels=1, rate=48000.0, default=False):
    from lungapp.audio.devices import DeviceInfo

    return DeviceInfo(index, name, hostapi, channels, rate, default)


def test_a_stethoscope_plugged_in_after_start_appears_on_refresh(qtbot, monkeypatch):
    """PortAudio lists new devices only after a re-initialisation: Refresh and opening
    the picker re-scan; the remembered device stays chosen (by name + host API, its
    index may change), and one that disappeared gives way without being forgotten."""
    from lungapp.audio import devices

    mic = fake_device(0, "Built-in mic", default=True)
    listed = [[mic]]
    rescans = []
    monkeypatch.setattr(devices, "list_input_devices", lambda: list(listed[-1]))
    monkeypatch.setattr(devices, "rescan", lambda: rescans.append(len(listed)) or True)
    ctx, view = make_view(qtbot)
    view.PICKER_RESCAN_INTERVAL_S = 0.0
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=10000)
    assert view.device_combo.count() == 1 and rescans == []  # PortAudio has just enumerated
    view._device_changed(0)  # the user's choice: remembered
    assert view.settings.value("record/device") == "Built-in mic"
    assert view.settings.value("record/hostapi") == "ALSA"

    # A stethoscope is plugged in; after the re-scan PortAudio numbers it first.
    steth = fake_device(0, "USB Stethoscope", channels=2, rate=44100.0)
    listed.append([steth, fake_device(1, "Built-in mic", default=True)])
    qtbot.mouseClick(view.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.device_combo.count() == 2 and view.record_button.isEnabled(),
                    timeout=10000)
    assert rescans == [2]
    assert view.selected_device().name == "Built-in mic" and view.selected_device().index == 1
    assert "New: USB Stethoscope" in view.status.text()
    assert "USB Stethoscope - ALSA, 2 ch, 44.1 kHz" in [view.device_combo.itemText(i) for i in range(2)]

    # The mic is unplugged; opening the picker re-scans: the stethoscope is chosen, but
    # the mic stays the remembered device and is chosen again when it comes back.
    listed.append([steth])
    view.device_combo.showPopup()
    qtbot.waitUntil(lambda: view.device_combo.count() == 1 and not view._listing, timeout=10000)
    view.device_combo.hidePopup()
    assert rescans == [2, 3]
    assert view.selected_device().name == "USB Stethoscope"
    assert view.settings.value("record/device") == "Built-in mic"
    listed.append([steth, fake_device(4, "Built-in mic", default=True)])
    view.refresh_devices()
    qtbot.waitUntil(lambda: view.device_combo.count() == 2 and not view._listing, timeout=10000)
    assert view.selected_device().name == "Built-in mic" and view.selected_device().index == 4


def test_the_remembered_device_is_matched_by_name_and_host_api(qtbot, monkeypatch):
    from lungapp.audio import devices

    listed = [fake_device(0, "Steth", "ALSA"), fake_device(1, "Steth", "JACK Audio Connection Kit"),
              fake_device(2, "Mic", "ALSA", default=True)]
    monkeypatch.setattr(devices, "list_input_devices", lambda: list(listed))
    monkeypatch.setattr(devices, "rescan", lambda: True)
    ctx, view = make_view(qtbot)
    view.settings.setValue("record/device", "Steth")
    view.settings.setValue("record/hostapi", "JACK Audio Connection Kit")
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=10000)
    view.refresh_devices()
    qtbot.waitUntil(lambda: not view._listing, timeout=10000)
    assert view.selected_device() == listed[1]


def test_the_empty_view_shows_the_selected_devices_axes(qtbot, monkeypatch):
    """Before recording, the live view already shows seconds and 0 Hz .. the top
    frequency the recording will show at the selected device's rate (not -0.5..0.5)."""
    from lungapp.audio import devices
    from lungapp.audio.live import live_bins, live_config

    monkeypatch.setattr(devices, "list_input_devices",
                        lambda: [fake_device(0, "Steth 44k", rate=44100.0, default=True),
                                 fake_device(1, "Steth 16k", rate=16000.0)])
    ctx, view = make_view(qtbot)
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=10000)
    (x0, x1), (y0, y1) = view.live.axis_ranges()
    assert (x0, x1) == (-10.0, 0.0)
    assert y0 == 0.0 and y1 == pytest.approx(live_bins(live_config(44100))[1])
    view.device_combo.setCurrentIndex(1)
    assert view.live.axis_ranges()[1][1] == pytest.approx(live_bins(live_config(16000))[1])
    assert view.live.axis_ranges()[1][1] <= 8000  # never above Nyquist


@pytest.mark.audio
@pytest.mark.slow
def test_a_device_lost_mid_recording_stops_it_keeps_the_audio_and_says_so(qtbot, unplug_sink):
    """The capture device vanishes under the Record view (its PulseAudio source is
    unloaded, as a USB stethoscope's is when pulled out): the view stops by itself, keeps
    every captured frame in the published file and says what happened."""
    ctx, view = make_view(qtbot)
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=20000)
    view.duration_combo.setCurrentText("Until stopped")
    view.start()
    qtbot.waitUntil(lambda: view.state == "recording" or view.state == "idle", timeout=20000)
    assert view.state == "recording", view.status.text()
    cap = view.capture
    assert cap.wait_first_callback(10.0)
    qtbot.waitUntil(lambda: view.recording.frames_flushed > 0.3 * cap.rate, timeout=20000)
    with qtbot.waitSignal(ctx.recordingFinished, timeout=30000) as sig:
        unplug_sink()
    assert view.state == "idle"
    res = view.last_result
    assert res.reason == "device failed" and "stopped delivering audio" in res.error
    text = view.status.text()
    assert text.startswith("Recording stopped:") and "stopped delivering audio" in text
    assert f"Kept {res.duration_s:.1f} s" in text
    path = Path(sig.args[0])
    assert path.exists() and not Path(str(path) + ".partial").exists()
    assert sf.info(path).frames == res.frames == cap.ring.written > 0.3 * cap.rate
    assert json.loads(path.with_suffix(".json").read_text())["status"] == "device failed"
    assert view.record_button.isEnabled()  # ready for the next recording
