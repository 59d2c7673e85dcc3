"""research/session_pairs.py: intra_test normal recordings against the same child's train
normal recordings, judged by the same fold model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lungapp.dsp.spectrogram import SpectrogramConfig
from lungapp.errors import LungappError
from lungapp.inference.features import FeatureConfig

from train_helpers import binary_dataset  # noqa: E402

TINY_FC = FeatureConfig(SpectrogramConfig(rate=4000, win_length=256, hop_length=128, n_fft=256,
                                          scale="mel", n_mels=32, fmin=50.0, fmax=2000.0),
                        window_s=2.0, hop_s=1.0)


def _side(mod, number, prob, n_events=3, flags=(), cover=()):
    return mod.Side(number, prob, n_events, np.asarray(flags, dtype=float), np.asarray(cover, dtype=float))


def test_recording_numbers_come_from_sprsound_names(repo_script):
    from lungapp.data.readers import sprsound_name_info

    mod = repo_script("research/session_pairs.py")
    assert mod.recording_number(sprsound_name_info("40069321_15.3_0_p1_981")[1]) == 981
    assert mod.recording_number(sprsound_name_info("rec_1")[1]) is None
    assert mod.recording_number({"number": "x"}) is None


def test_event_coverage_counts_overlapping_events_once(repo_script):
    mod = repo_script("research/session_pairs.py")
    starts = np.array([0.0, 1.0, 2.0, 4.0])
    # events 0.5-1.5 and 1.0-2.5 overlap: their union 0.5-2.5 covers 1.5 s of window 1-3, not 2
    cov = mod.event_coverage(starts, 2.0, [(1.0, 2.5), (0.5, 1.5), (3.0, 3.0)])
    assert cov.tolist() == pytest.approx([0.75, 0.75, 0.25, 0.0])
    assert mod.event_coverage(starts, 2.0, []).tolist() == [0.0] * 4


def test_each_intra_recording_pairs_with_the_nearest_normal_of_its_child(repo_script):
    mod = repo_script("research/session_pairs.py")
    intra = {"a": [_side(mod, 10, 0.9)], "b": [_side(mod, 50, 0.2)], "c": [_side(mod, 7, 0.5)]}
    train = {"a": [_side(mod, 2, 0.1), _side(mod, 12, 0.2), _side(mod, 8, 0.3)],
             "b": [_side(mod, 60, 0.4)]}
    pairs = mod.pair_up(intra, train)
    # a's 10 is 2 from both 8 and 12: the earlier recording wins; c has no train recording
    assert [(a.number, b.number) for a, b in pairs] == [(10, 8), (50, 60)]


def test_pair_rows_split_by_distance_and_count_calls(repo_script):
    mod = repo_script("research/session_pairs.py")
    pairs = [(_side(mod, 10, 0.9, 2), _side(mod, 11, 0.1, 4)),
             (_side(mod, 20, 0.2, 2), _side(mod, 22, 0.6, 4)),
             (_side(mod, 30, 0.8, 1), _side(mod, 40, 0.1, 5))]
    rows = mod.pair_rows(pairs, 0.5, session=2)
    assert [r[0] for r in rows] == ["all pairs", "same sitting (at most 2 apart)", "further apart (over 2)"]
    assert rows[0][1:4] == (3, 2, 1)
    assert rows[0][6] == pytest.approx(2 / 3)
    assert rows[0][7:] == pytest.approx((5 / 3, 13 / 3))
    assert rows[1][1:4] == (2, 1, 1) and rows[1][4] == pytest.approx(0.55)
    assert rows[2][1:4] == (1, 1, 0)
    empty = mod.pair_rows(pairs[:1], 0.5, session=2)[2]
    assert empty[1] == 0 and math.isnan(empty[4])


def test_coverage_rows_band_the_windows(repo_script):
    mod = repo_script("research/session_pairs.py")
    sides = [_side(mod, 1, 0.1, flags=[0.9, 0.2, 0.7], cover=[0.0, 0.05, 0.5]),
             _side(mod, 2, 0.1, flags=[0.1, 0.95], cover=[1.0, 0.6])]
    rows = mod.coverage_rows(sides)
    assert [r[1] for r in rows] == [2, 1, 2]
    assert [r[3] for r in rows] == [1, 1, 1]
    assert rows[0][2] == pytest.approx(0.4) and rows[2][4] == pytest.approx(0.5)


def test_an_oof_file_without_window_outputs_is_refused(repo_script, tmp_path):
    mod = repo_script("research/session_pairs.py")
    bad = tmp_path / "oof.npz"
    np.savez(bad, path=np.array(["a"]), patient=np.array(["p"]), label=np.array(["Normal"]),
             probs=np.zeros((1, 2)))
    with pytest.raises(LungappError, match="window outputs"):
        mod.train_sides(bad, tmp_path, card=None)


def test_without_sprsound_folders_it_says_so(repo_script, tmp_path, capsys):
    mod = repo_script("research/session_pairs.py")
    assert mod.main([str(tmp_path), str(tmp_path / "oof.npz"), "--data", str(tmp_path)]) == 1
    assert "no SPRSound train and intra_test" in capsys.readouterr().err


@pytest.mark.slow
def test_the_training_folder_against_itself_pairs_each_recording_with_itself(repo_script, tmp_path):
    """With intra_test the training folder itself, each normal recording pairs with itself
    and both sides are judged by the model that held its patient out: the same calls, the
    same probabilities and the same window tables on both sides."""
    mod = repo_script("research/session_pairs.py")
    from lungapp.training.recipes import TrainOptions
    from lungapp.training.train import train

    data = tmp_path / "data"
    binary_dataset(data / "train", n_patients=6, per_class=2, seconds=5.0)
    (data / "intra_test").symlink_to(data / "train", target_is_directory=True)
    opts = TrainOptions.from_preset("recommended", folds=2, epochs=3, batch_size=8, lr=3e-3,
                                    features=TINY_FC, early_stopping=0, steps_per_epoch=0,
                                    val_fraction=0.0, artifact="ensemble", device_shift=False)
    train(data / "train", tmp_path / "run", opts, progress=lambda e: None,
          oof_path=tmp_path / "oof.npz")
    res = mod.run_check(tmp_path / "run", tmp_path / "oof.npz", data, session=2)
    everything, same, further = res["pairs"]
    assert everything[1] == same[1] == 12 and further[1] == 0
    assert abs(everything[2] - everything[3]) <= 1  # likewise a recording at the threshold
    assert everything[4] == pytest.approx(everything[5], abs=1e-3)  # training reads float16 windows
    assert everything[7] == everything[8] > 0
    intra, train_rows = res["coverage intra_test"], res["coverage train"]
    assert [r[1] for r in intra] == [r[1] for r in train_rows] and sum(r[1] for r in intra) > 0
    # a window within float16 rounding of 0.5 may land on either side
    assert all(abs(a[3] - b[3]) <= 1 for a, b in zip(intra, train_rows))
    assert "| all pairs | 12 |" in mod.tables(res)
