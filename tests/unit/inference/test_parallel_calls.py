"""Model calls side by side (lungapp.inference.runtime.run_parallel / ensemble_outputs),
the windows written into scratch arrays, and the quality check computed a chunk at a time:
each must give what the plain, one-at-a-time computation gives."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lungapp.dsp import SpectrogramConfig
from lungapp.dsp.scratch import scratch
from lungapp.inference import quality, runtime
from lungapp.inference.features import FeatureConfig, WindowStream, member_windows

FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=128, hop_length=64, n_fft=128,
                                     scale="mel", n_mels=24), window_s=2.0, hop_s=0.5)


def test_run_parallel_keeps_the_order_uses_two_threads_and_raises_errors(monkeypatch):
    monkeypatch.setenv("LUNGAPP_THREADS", "2")
    both = threading.Barrier(2, timeout=10)  # passes only when two threads call at once
    names = runtime.run_parallel([lambda: (both.wait(), threading.current_thread().name)[1]] * 2)
    assert len(set(names)) == 2
    assert runtime.run_parallel([lambda i=i: i * i for i in range(20)]) == [i * i for i in range(20)]
    assert runtime.run_parallel([]) == []

    def boom():
        raise ValueError("member 2 failed")
    with pytest.raises(ValueError, match="member 2 failed"):
        runtime.run_parallel([lambda: 1, boom, lambda: 3])


def test_call_pieces_cover_the_windows_in_order_and_bound_the_call(monkeypatch):
    monkeypatch.setenv("LUNGAPP_THREADS", "2")
    for n, per, members in [(27, 249 * 64, 1), (12, 499 * 64, 2), (117, 249 * 64, 1), (1, 100, 1),
                            (57, 499 * 64, 2)]:
        pieces = runtime.call_pieces(n, per, members)
        assert pieces[0].start == 0 and pieces[-1].stop == n
        assert all(a.stop == b.start for a, b in zip(pieces, pieces[1:]))
        assert all((p.stop - p.start) * per <= runtime.BATCH_VALUES for p in pieces)
        assert len(pieces) * members >= min(2, n * members)  # every thread gets a call
    monkeypatch.setenv("LUNGAPP_THREADS", "1")
    assert len(runtime.call_pieces(12, 249 * 64, 1)) == 1  # one thread, within BATCH_VALUES


class _Member:
    """Stands for an OnnxModel: outputs that depend on each window alone."""

    def __init__(self, w):
        self.w = np.float32(w)

    def __call__(self, x):
        return np.stack([x.reshape(len(x), -1).mean(axis=1) * self.w, x.reshape(len(x), -1).max(axis=1)], axis=1)


def test_ensemble_outputs_equal_each_member_on_all_windows(monkeypatch):
    monkeypatch.setenv("LUNGAPP_THREADS", "2")
    rng = np.random.default_rng(0)
    m = [_Member(w) for w in (0.5, 1.5, 2.0)]
    x1, x2 = rng.random((27, 30, 8, 1), dtype=np.float32), rng.random((12, 60, 8, 1), dtype=np.float32)
    got = runtime.ensemble_outputs([([m[0]], x1), (m[1:], x2)])
    np.testing.assert_array_equal(got[0], m[0](x1))
    np.testing.assert_array_equal(got[1], (m[1](x2) + m[2](x2)) / np.float32(2))


def test_scratch_arrays_are_reused_per_thread_and_grow():
    a = scratch("test.a", 4, (3,), np.float64)
    assert scratch("test.a", 2, (3,), np.float64).base is a.base
    assert scratch("test.a", 10, (3,), np.float64).shape == (10, 3)
    other = []
    t = threading.Thread(target=lambda: other.append(scratch("test.a", 4, (3,), np.float64)))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], scratch("test.a", 4, (3,), np.float64))


@pytest.mark.parametrize("seconds", [1.5, 9.0])
def test_reused_stream_windows_equal_new_arrays(seconds):
    x = np.random.default_rng(1).normal(0, 0.1, int(seconds * 4000)).astype(np.float32)
    fcs = [FC, FeatureConfig(FC.spectrogram, window_s=4.0, hop_s=1.0)]
    want = member_windows(x, fcs)
    stream = WindowStream(fcs, chunk_s=2.0, reuse=True)
    got = {g: [] for g in range(2)}
    for i in range(0, len(x), 1000):
        for g, X, s in stream.push(x[i: i + 1000]):
            got[g].append((X.copy(), s))  # valid until the next push
    for g, X, s in stream.finish():
        got[g].append((X.copy(), s))
    for g, (X, s) in enumerate(want):
        np.testing.assert_array_equal(np.concatenate([a for a, _ in got[g]]), X)
        np.testing.assert_array_equal(np.concatenate([b for _, b in got[g]]), s)


def test_quality_frames_a_chunk_at_a_time_equal_the_whole_signals(monkeypatch):
    """Per-frame figures computed in chunks of 7 frames equal one pass over every frame."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, 8000 * 6)
    x[20000:26000] = rng.normal(0, 0.5, 6000)  # a noisy stretch
    whole = quality._frame_stats(x, 8000)
    monkeypatch.setattr(quality, "_CHUNK_FRAMES", 7)
    chunked = quality._frame_stats(x, 8000)
    np.testing.assert_array_equal(whole.power, chunked.power)
    np.testing.assert_array_equal(whole.log_mean, chunked.log_mean)
    n_fft = 256
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::n_fft // 2]
    spec = (np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2)[:, 1:]
    np.testing.assert_allclose(whole.power, spec.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(whole.log_mean, np.log(spec + 1e-20).mean(axis=1), rtol=1e-12)
