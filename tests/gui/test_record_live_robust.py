"""The Record tab's live controls: Space does not start a recording while the device list
is being made again (PortAudio is re-initialised then), and the level meter does not keep
the last level and its clipping warning after a recording ends. A real X server."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from test_record_view import fake_device, make_view

pytestmark = pytest.mark.gui


def test_space_starts_nothing_while_the_device_list_is_made_again(qtbot, monkeypatch):
    # The Record button is off while listing, but Space (a shortcut) went on to open the
    # device while PortAudio was being re-initialised under it.
    from lungapp.audio import devices

    listing, release = threading.Event(), threading.Event()

    def slow_list():
        if listing.is_set():
            release.wait(20)
        return [fake_device(0, "USB Stethoscope", default=True)]

    monkeypatch.setattr(devices, "list_input_devices", slow_list)
    monkeypatch.setattr(devices, "rescan", lambda: True)
    _, view = make_view(qtbot)
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=10000)
    listing.set()
    try:
        assert view.refresh_devices(rescan=True)
        assert view._listing and not view.record_button.isEnabled()
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_Space)
        view.toggle()                                   # what the shortcut calls
        assert view.state == "idle" and view._start_task is None
    finally:
        release.set()
    qtbot.waitUntil(lambda: not view._listing and view.record_button.isEnabled(), timeout=10000)


def test_the_level_meter_is_cleared_when_a_recording_ends(qtbot, monkeypatch, tmp_path):
    # The meter is fed only while recording: after Stop it showed the last level and
    # "CLIPPING" for good, also after another device was chosen.
    from lungapp.audio import devices
    from lungapp.audio.recorder import Recording, RecordingSettings
    from lungapp.audio.ringbuffer import RingBuffer

    monkeypatch.setattr(devices, "list_input_devices", lambda: [fake_device(0, "USB Stethoscope", default=True)])
    _, view = make_view(qtbot)
    qtbot.waitUntil(lambda: view.record_button.isEnabled(), timeout=10000)
    ring = RingBuffer(8000 * 3)
    rec = Recording(ring, 8000, RecordingSettings(site="Trachea"))
    ring.write(np.clip(np.sin(np.arange(8000) / 3.0) * 1.5, -1, 1).astype(np.float32))
    view.meter.set_level(1.0, 0.7, clipped=True)      # what the last tick of a clipped input showed
    assert view.meter.clipping
    view._finished(rec.stop(), quitting=True)
    assert not view.meter.clipping and view.meter.clip_label.text() == ""
    assert view.state == "idle"
