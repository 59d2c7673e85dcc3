"""The Record view's live picture: only new columns are coloured and written, the
picture equals the core's streaming spectrogram, it scrolls evenly although audio
arrives in bursts, and the empty view already has the recording's axes.

No timed assertions: wall-clock times are passed in (ScrollClock and
LiveSpectrogram.refresh take ``now``)."""

from __future__ import annotations

import numpy as np
import pytest

from lungapp.audio.live import LiveMonitor, ScrollClock, live_bins, live_config
from lungapp.audio.ringbuffer import RingBuffer
from lungapp.dsp.spectrogram import spectrogram

RATE = 48000


def to_uint8(db, cfg):
    return ((db - cfg.min_db) * 255.0 / (cfg.max_db - cfg.min_db) + 0.5).clip(0, 255).astype(np.uint8)


def signal(seconds, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = 0.05 * rng.standard_normal(n) + 0.4 * np.sin(2 * np.pi * 700 * t) * (t > seconds / 2)
    return x.astype(np.float32)


# --- the clock ------------------------------------------------------------------------

def bursty_arrivals(seconds, burst_s=0.085, jitter_s=0.012, seed=1):
    """(wall time, stream seconds delivered) of a device delivering `burst_s` of audio
    per burst, each burst late by 0..jitter_s."""
    rng = np.random.default_rng(seed)
    out, k = [], 1
    while k * burst_s < seconds:
        out.append((10.0 + k * burst_s + rng.uniform(0, jitter_s), k * burst_s))
        k += 1
    return out


def run_clock(clock, arrivals, tick_s=0.033, until=None):
    """Tick every tick_s; observe the arrivals seen by each tick (as the view does).
    Returns [(now, shown, newest stream time observed)]."""
    until = until or arrivals[-1][0]
    out, i, latest = [], 0, None
    now = arrivals[0][0]
    while now <= until:
        while i < len(arrivals) and arrivals[i][0] <= now:
            latest = arrivals[i][1]
            clock.observe(latest, now)
            i += 1
        shown = clock.time(now)
        if shown is not None:
            out.append((now, shown, latest))
        now += tick_s
    return out


def test_scroll_clock_moves_evenly_between_bursts():
    clock = ScrollClock()
    frames = run_clock(clock, bursty_arrivals(20.0))
    steady = frames[len(frames) // 4:]  # after the first window of observations
    steps = np.diff([s for _, s, _ in steady])
    dts = np.diff([t for t, _, _ in steady])
    # Every frame moves, by the wall time elapsed (within the 10 % correction) --
    # not by a whole 85 ms burst now and then.
    assert np.all(steps > 0)
    np.testing.assert_allclose(steps, dts, rtol=0.11)
    for _, shown, latest in frames:
        assert shown <= latest + 1e-12  # never beyond the audio received
    lag = np.array([latest - shown for _, shown, latest in steady])
    # Behind by what the bursts need: one burst, plus arrival jitter and a tick (the
    # view sees arrivals at its ticks), plus the margin; never by two bursts.
    assert lag.max() < 0.085 + 0.012 + 0.033 + 0.01
    assert clock.delay_s < 0.085 + 0.012 + 0.033 + 0.01


def test_scroll_clock_stops_at_the_newest_audio_and_never_goes_back():
    clock = ScrollClock()
    arrivals = bursty_arrivals(3.0)
    frames = run_clock(clock, arrivals, until=arrivals[-1][0] + 2.0)  # then nothing arrives
    shown = np.array([s for _, s, _ in frames])
    assert np.all(np.diff(shown) >= 0)
    assert shown[-1] == pytest.approx(arrivals[-1][1])
    # Audio resumes after the stall: the clock catches up (jumps, as it is far behind).
    t_end = frames[-1][0]
    for k in range(1, 40):
        clock.observe(arrivals[-1][1] + 3.0 + k * 0.085, t_end + k * 0.085)
    assert clock.time(t_end + 40 * 0.085) > arrivals[-1][1] + 3.0


# --- the widget -------------------------------------------------------------------------

@pytest.fixture
def live(qtbot):
    from lungapp.gui.live_spectrogram import LiveSpectrogram

    w = LiveSpectrogram()
    qtbot.addWidget(w)
    w.resize(900, 450)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_each_frame_colours_and_writes_only_the_new_columns(live, qtbot):
    ring = RingBuffer(RATE * 30)
    mon = LiveMonitor(ring, RATE)
    live.attach(mon)
    x = signal(14.0)
    canvas = live.image
    now, pos, per_frame = 100.0, 0, []
    block = 1024
    frames = 0
    while pos + 3 * block <= len(x):
        n = block * (1, 2, 0, 3)[frames % 4]  # bursty, sometimes nothing
        ring.write(x[pos:pos + n])
        pos += n
        before_total = mon.columns_total
        mon.update()
        new = mon.columns_total - before_total
        rgb_before = canvas._rgb.copy()
        live.refresh(now)
        # Exactly the new columns were coloured and written ...
        assert canvas.last_written == new
        per_frame.append(new)
        # ... into their two slots of the double-width canvas, and nothing else changed.
        changed = np.flatnonzero(np.any(canvas._rgb != rgb_before, axis=0))
        slots = (np.arange(before_total, mon.columns_total) % canvas.slots)
        allowed = set(slots.tolist()) | set((slots + canvas.slots).tolist())
        assert set(changed.tolist()) <= allowed
        now += 0.033
        frames += 1
        if frames % 50 == 0:
            qtbot.wait(1)  # let it paint now and then
    assert canvas.columns_written == mon.columns_total  # each column written once
    assert max(per_frame) <= 6 and np.mean(per_frame) < 2.5  # a few per frame, not 625
    # The picture is the core's streaming spectrogram: the columns shown equal the
    # batch spectrogram of everything captured (the engines agree), in uint8 and in
    # viridis pixels.
    live.show_all()
    c0, c1 = canvas.shown_columns()
    # The visible 10 s (+ the partly visible column at the left edge).
    assert c1 == mon.columns_total and c1 - c0 in (mon.n_cols, mon.n_cols + 1)
    ref = to_uint8(spectrogram(x[:pos], mon.cfg)[:, : mon.n_bins], mon.cfg)
    shown = live.image_data()
    assert shown.shape == (c1 - c0, mon.n_bins)
    assert np.max(np.abs(shown.astype(int) - ref[c0:c1].astype(int))) <= 1
    np.testing.assert_array_equal(shown[-mon.n_cols:], mon.image8())  # = the monitor's window
    np.testing.assert_array_equal(canvas.shown_pixels(), canvas.lut[shown[:, ::-1].T])
    # The 700 Hz tone of the second half is where it should be (row 0 = 0 Hz).
    tone_bin = int(round(700 / (RATE / mon.cfg.n_fft)))
    assert int(np.argmax(shown[-50:].mean(axis=0))) == tone_bin
    # The waveform envelope was drawn the same way: only new points, each once.
    assert live.wave_image.columns_written == mon.env_total


def test_the_picture_moves_and_is_painted_every_frame(live, qtbot):
    """Audio in 2048-frame bursts (~43 ms, late by up to 15 ms), frames every 33 ms:
    every frame moves the picture and paints it, including frames without new audio."""
    ring = RingBuffer(RATE * 30)
    mon = LiveMonitor(ring, RATE)
    live.attach(mon)
    x = signal(8.0)
    rng = np.random.default_rng(2)
    burst = 2048
    arrivals = [(20.0 + (k + 1) * burst / RATE + rng.uniform(0, 0.015), k * burst)
                for k in range(len(x) // burst)]
    now, i, moved, ticks_without_audio = 20.0, 0, [], 0
    while i < len(arrivals):
        got = False
        while i < len(arrivals) and arrivals[i][0] <= now:
            start = arrivals[i][1]
            ring.write(x[start:start + burst])
            i += 1
            got = True
        mon.update()
        painted = live.frames_drawn
        did_move = live.refresh(now)
        if now > 23.0:  # after the clock's first window of observations
            moved.append(did_move)
            ticks_without_audio += not got
            qtbot.waitUntil(lambda painted=painted: live.frames_drawn > painted, timeout=5000)
        now += 0.033
    assert len(moved) > 100 and all(moved)
    assert ticks_without_audio > 10  # frames without new audio moved too
    # The canvases lie over the plots' view boxes.
    for plot, canvas in ((live.spec, live.image), (live.wave, live.wave_image)):
        rect = live.glw.mapFromScene(plot.vb.sceneBoundingRect()).boundingRect()
        assert canvas.geometry() == rect and canvas.isVisible()


def test_empty_view_has_seconds_and_hertz_axes(live):
    (x0, x1), (y0, y1) = live.axis_ranges()
    top = live_bins(live_config(48000))[1]
    assert (x0, x1) == (-10.0, 0.0)
    assert y0 == 0.0 and y1 == pytest.approx(top) and 3900 < top <= 4000
    assert "Time before now" in live.spec.getAxis("bottom").labelText
    assert live.spec.getAxis("bottom").labelUnits == "s"
    assert live.spec.getAxis("left").labelUnits == "Hz"
    assert not live.image.isVisible()  # nothing drawn over the empty axes
    live.set_geometry(16000)
    assert live.axis_ranges()[1] == (0.0, pytest.approx(live_bins(live_config(16000))[1]))
