"""A model card a clinician can read: Markdown rendered from ``card.json``.

Used for ``resources/model/MODEL_CARD.md`` and the About box. Every number comes from
the card (which the training run wrote); nothing here is typed in by hand.

    python -m lungapp.training.card_text MODEL_DIR   # (re)writes MODEL_DIR/MODEL_CARD.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from lungapp.inference.card import ModelCard, load_card, pooling_words
from lungapp.inference.card_schema import CrossValidation


def seed_words(members: list[dict]) -> str:
    """"seeds 0, 1, 2" for a card's ``training.members``; with several window lengths,
    "seeds 0, 1 on 2-s windows and seed 0 on 4-s windows"."""
    by: dict = {}
    for x in members:
        by.setdefault(x.get("window_s"), []).append(str(x.get("seed")))
    def seeds(v: list[str]) -> str:
        return ("seed " if len(v) == 1 else "seeds ") + ", ".join(v)

    if len(by) == 1:
        return seeds(next(iter(by.values())))
    return " and ".join(f"{seeds(v)} on {w:g}-s windows" for w, v in by.items())


def _f(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _versus(chk: dict, lead: str) -> str:
    """How a four-class rule compared with the most probable class, strictly scored."""
    lo, hi = chk.get("ci95") or [None, None]
    return (f"{lead} {_f(chk.get('nested_score'))} against "
            f"{_f(chk.get('nested_argmax_score'))} for the most probable class (95 % interval "
            f"of the gain {_f(lo)} to {_f(hi)}, bootstrap over "
            f"{chk.get('resampled', 'recordings')})")


def _reliability_table(bins: list) -> list[str]:
    rows = ["| probability | recordings | mean probability | abnormal fraction |", "|---|---|---|---|"]
    rows += [f"| {b['from']:.1f}-{b['to']:.1f} | {b['n']} | {_f(b['mean_probability'])} | "
             f"{_f(b['abnormal_fraction'])} |" for b in bins]
    return rows


def _calibration_lines(card: ModelCard) -> list[str]:
    """The card's calibration: the fit, and how well calibrated its out-of-fold
    probabilities are (ECE, reliability bins)."""
    c = card.calibration
    if c is None:
        return []
    out = ["## Calibration", "",
           f"The abnormal probability the app shows is Platt-scaled (sigmoid({c.a:.3f} x logit(p) "
           f"{'+' if (c.b or 0) >= 0 else '-'} {abs(c.b or 0):.3f})), fitted on "
           f"{c.fitted_on or 'the out-of-fold predictions'}; "
           f"the threshold {_f(card.threshold)} is the chosen threshold ({_f(c.raw_threshold)} on the "
           "uncalibrated scale) carried over, so no decision changes. Expected calibration error "
           f"out of fold: {_f(c.ece_raw)} before, {_f(c.ece)} after ({_f(c.nested_ece)} with each fold "
           "calibrated on the other folds only). A probability is calibrated to the training "
           "collection's mix of normal and abnormal recordings; where abnormal recordings are "
           "commoner, the same probability means more.", ""]
    if c.reliability:
        out += ["Out of fold, calibrated:", ""] + _reliability_table(c.reliability) + [""]
    return out


def interval_text(v) -> str:
    """The text ' (low-high)' of a 95 % interval [low, high], or nothing when there is none
    (the model card's and the research tables' way of writing one)."""
    return f" ({v[0]:.2f}-{v[1]:.2f})" if v and v[0] is not None and v[1] is not None else ""


def _external_lines(card: ModelCard) -> list[str]:
    """The model on collections and devices it was not trained on."""
    checks = card.external_checks
    if not checks:
        return ["## Beyond the training collection", "",
                "Not checked on any other collection or device.", ""]
    out = ["## Beyond the training collection", "",
           f"At the card's threshold ({_f(card.threshold)}); 'best threshold' is the one that "
           "would have maximised the score on that data (for comparison only: it is never "
           "chosen there).", "",
           "| data | n (abnormal / normal) | AUC | sensitivity | specificity | score | four-class "
           "| refused | warned | unlike training | ECE | best threshold |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in checks:
        out.append(f"| {x.name} | {x.n} ({x.n_abnormal} / {x.n_normal}) | {_f(x.auc)}{interval_text(x.auc_ci95)} | "
                   f"{_pct(x.sensitivity)} | {_pct(x.specificity)} | {_f(x.score)}{interval_text(x.score_ci95)} | "
                   f"{_f(x.four_class_score)} | {x.refused} | {x.warned} | "
                   f"{'n/a' if x.unfamiliar is None else x.unfamiliar} | {_f(x.ece)} | "
                   f"{_f(x.best_threshold)} |")
    out.append("")
    with_ci = [x for x in checks if x.auc_ci95 or x.score_ci95]
    if with_ci:
        whom = sorted({f"{x.resampled}" for x in with_ci if x.resampled})
        out += ["In brackets, 95 % intervals from a bootstrap that resamples each row's "
                f"{' or '.join(whom) or 'recordings'} whole (how many: "
                + "; ".join(f"{x.name}: {x.n_groups}" for x in with_ci if x.n_groups) + "). "
                "A device checked on a few patients is known only roughly.", ""]
    for x in checks:
        if x.reliability:
            out += [f"Reliability on {x.name}:", ""] + _reliability_table(x.reliability) + [""]
    cmds = sorted({x.command for x in checks if x.command})
    if cmds:
        out += ["Measured with: " + "; ".join(f"`{c}`" for c in cmds) + ".", ""]
    return out


def _profile_lines(card: ModelCard) -> list[str]:
    """What the input profile is and how it was fitted (none: no section)."""
    pr = card.input_profile
    if pr is None:
        return []
    return ["## Recordings unlike the training ones", "",
            f"A result carries a caution when the recording's balance of frequencies (ten "
            f"half-octave bands, {pr.bands_hz[0]:g}-{pr.bands_hz[-1]:g} Hz, gain removed) lies "
            f"farther from the training recordings' than {100 * pr.quantile:g} % of held-out "
            f"training recordings do, as another stethoscope or filter mode can make it. Fitted on "
            f"{pr.recordings} recordings" + (f" of {pr.patients} patients" if pr.patients else "")
            + (f" ({pr.source})" if pr.source else "") + f"; {len(pr.axes)} principal axes; "
            f"{100 * pr.held_out_unfamiliar:.1f} % of held-out training recordings are called "
            "unlike them. The answer is still given: a recording like the training ones can "
            "still be judged wrongly, and the caution does not say the answer is wrong.", ""]


def _equalisation_lines(card: ModelCard) -> list[str]:
    """How the model's input is equalised (none: no section)."""
    eq = card.equalisation
    if eq is None:
        return []
    return ["## Equalised input", "",
            f"Before the model reads a recording, the recording is filtered so that its balance "
            f"of frequencies (ten half-octave bands, {eq.bands_hz[0]:g}-{eq.bands_hz[-1]:g} Hz) "
            f"matches the training recordings' mean"
            + (f", measured on {eq.recordings} recordings" if eq.recordings else "")
            + (f" ({eq.source})" if eq.source else "") + ". This takes most of a stethoscope's "
            "coloration out of what the model reads. The quality check, the caution on "
            "recordings unlike the training ones and the sound you hear use the recording as it is.", ""]


def card_markdown(card: ModelCard) -> str:
    """The card as Markdown: intended use, data, performance, limitations, details."""
    m, t = card.metrics, card.training
    ov, data = m.overall, t.data
    cv = t.cv or CrossValidation()
    lines = [f"# Model card: {card.name} {card.version}", ""]
    lines += ["## Intended use", "", card.intended_use, ""]
    lines += ["## What it reports", "",
              f"For a lung-sound recording: one of {', '.join(card.classes)}; the probability "
              f"that it holds adventitious sounds (abnormal), called abnormal at "
              f"{_f(card.threshold)} or above ({card.threshold_rule or 'threshold rule not stated'}); "
              f"and a timeline of {card.features.window_s:g}-s windows every "
              f"{card.features.hop_s:g} s showing where. Recordings that fail the quality check "
              "are reported as poor quality instead of being given a result.", ""]
    groups = card.member_groups()
    if len(groups) > 1:
        lines[-1:-1] = [
            "", "The models read windows of different lengths of the same spectrogram ("
            + "; ".join(f"{len(files)} model{'s' if len(files) > 1 else ''} on {fc.window_s:g}-s "
                        f"windows every {fc.hop_s:g} s" for fc, files in groups)
            + "); each set's windows are pooled and the pooled values averaged over all models. "
            "The timeline shows the first set's windows, each with the other models' windows "
            "that cover its centre averaged in."]
    lines += ["## Training data", ""]
    if t.dataset_description:
        lines += [t.dataset_description, ""]
    if data:
        counts = ", ".join(f"{k} {v}" for k, v in (data.counts or {}).items())
        n_rec = data.n_recordings if data.n_recordings is not None else "n/a"
        lines += [f"- {n_rec} recordings of {data.n_patients or 'unknown number of'} patients "
                  f"({counts}); {(data.total_duration_s or 0) / 3600:.2f} h of audio.",
                  f"- Excluded: {data.excluded or 'none'}; unreadable files: {data.unreadable or 0}.",
                  f"- File list SHA-256: `{data.file_list_sha256 or 'n/a'}`.", ""]
    if t.credits:
        lines += ["Credits: " + t.credits, ""]
    lines += ["## Performance (cross-validation)", ""]
    members = t.members or []
    k = cv.k if cv.k is not None else "?"
    if ov:
        grouped = (', grouped by patient (no child in two folds)' if cv.grouped_by_patient
                   else ', split by file (optimistic)')
        if members:
            how = (f"An ensemble of {len(members)} models, each from a {k}-fold "
                   f"cross-validated run{grouped} ({seed_words(members)}); every recording scored by "
                   "each run's fold model that never saw it, their outputs averaged "
                   "(per-fold figures over the first run's folds). ")
        else:
            how = (f"{k}-fold cross-validation{grouped}; every recording scored by "
                   "the fold model that never saw it. ")
        lines += [how + "Normal vs abnormal (CAS, DAS or both):", "",
                  "| measure | value |", "|---|---|",
                  f"| sensitivity (abnormal recordings found) | {_pct(ov.sensitivity)} |",
                  f"| specificity (normal recordings called normal) | {_pct(ov.specificity)} |",
                  f"| score (mean of the two) | {_f(ov.score)} |",
                  f"| AUC | {_f(ov.auc)} |",
                  f"| accuracy | {_pct(ov.accuracy)} |", ""]
        msd = m.mean_sd or {}
        if msd:
            lines += ["Per fold (mean ± sd): " + ", ".join(
                f"{k} {_f(v.get('mean'))} ± {_f(v.get('sd'))}" for k, v in msd.items()
                if isinstance(v, dict)) + ".", ""]
        (tn, fp), (fn, tp) = ov.confusion or [[0, 0], [0, 0]]
        lines += ["Confusion matrix (recordings):", "",
                  "| | called normal | called abnormal |", "|---|---|---|",
                  f"| normal | {tn} | {fp} |", f"| abnormal | {fn} | {tp} |", ""]
    fc = m.four_class
    if fc and fc.classes and fc.confusion:
        how = ""
        if card.flag_thresholds:
            ft = card.flag_thresholds
            how = (f" An abnormal recording is called CAS when its CAS flag is at least "
                   f"{ft['CAS']:.3f}, DAS when its DAS flag is at least {ft['DAS']:.3f}, CAS & DAS "
                   "when both are (neither: the flag nearer its threshold); both thresholds were "
                   "chosen on the out-of-fold predictions")
        elif card.class_pooling:
            fixed = (fc.class_pooling_check or {}).get("fixed")
            how = (" An abnormal recording is given its most probable abnormal class from its CAS "
                   f"and DAS flags pooled as {pooling_words(card.class_pooling)} over its windows "
                   f"(its abnormal probability keeps the {card.pooling} of the windows), a pooling "
                   + ("fixed by the recipe" if fixed else "chosen on the out-of-fold predictions"))
        if how:
            if fc.argmax_score is not None:
                how += f" (the most probable class of the {card.pooling}: {_f(fc.argmax_score)})"
            how += "."
        else:
            how = " An abnormal recording is given its most probable abnormal class."
        if fc.nested_score is not None:
            how += f" With every threshold chosen on the other folds only: {_f(fc.nested_score)}."
        cp = fc.class_pooling_check or {}
        for key, used, what, was, lead in (
                ("flag_rule_check", bool(card.flag_thresholds),
                 "Per-flag thresholds (CAS, DAS, and CAS & DAS when both flags reach theirs)", "were",
                 "with thresholds chosen on the other folds they scored"),
                ("class_pooling_check", bool(card.class_pooling),
                 f"Naming the class from the flags pooled by {pooling_words(cp.get('chosen', ''))} "
                 + ("" if cp.get("fixed") else f"(the best of {', '.join(cp.get('candidates', []))})"),
                 "was",
                 "with the threshold chosen on the other folds it scored" if cp.get("fixed") else
                 "with the pooling and threshold chosen on the other folds it scored")):
            chk = getattr(fc, key)
            if not chk:
                continue
            vs = _versus(chk, lead)
            if chk.get("fixed"):
                verdict = ("would also have been adopted on this evidence" if chk.get("adopted")
                           else "would not have been adopted on this evidence alone")
                how += f" {what.rstrip()} is the recipe's rule, used whatever this check says ({verdict}): {vs}."
            elif chk.get("superseded_by") == "class pooling fixed by the recipe":
                how += (f" {what} {was} tried and not used (the recipe fixes the class pooling; "
                        f"its check {'passed' if chk.get('adopted') else 'did not pass'}): {vs}.")
            elif used:
                how += f" {what} {was} adopted because {vs}."
            elif chk.get("superseded_by"):
                how += f" {what} passed the same check but scored lower strictly: {vs}."
            else:
                how += f" {what} {was} tried and not adopted, the gain being unclear: {vs}."
        lines += [f"Four classes: score {_f(fc.score)} (sensitivity = abnormal recordings "
                  "given their exact class; specificity = normal recordings called normal)." + how,
                  "",
                  "| true \\ called | " + " | ".join(fc.classes) + " |",
                  "|---|" + "---|" * len(fc.classes)]
        for c, row in zip(fc.classes, fc.confusion):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    lines += _start_lines(m.start_comparison)
    ds = m.device_shift
    if ds and ds.shifted:
        sh, drop = ds.shifted, ds.drop or {}
        lines += ["## Another stethoscope (device-shift check)", "",
                  f"The same out-of-fold recordings after {ds.transform}: AUC "
                  f"{_f(sh.auc)} (drop {_f(drop.get('auc'))}), score {_f(sh.score)} "
                  f"(drop {_f(drop.get('score'))}), sensitivity {_pct(sh.sensitivity)}, "
                  f"specificity {_pct(sh.specificity)}. Training augmentation: "
                  f"{ds.augmentation}.", ""]
        aug = (t.options or {}).get("augment") or {}
        white = "recorded noise" if (t.options or {}).get("real_noise") else "white noise"
        same = [name for key, name in (("snr_prob", white), ("noise_prob", "noise"),
                                       ("band_limit_prob", "band limits"),
                                       ("tilt_db_per_octave", "spectral tilt")) if aug.get(key)]
        if same:
            lines += [f"Caution: training already adds {', '.join(same)}, the same kinds of change "
                      "as this simulated device, so this check is easier for the model than a real "
                      "other stethoscope (different response, placement, friction and ambient "
                      "sounds), whose effect is not measured here.", ""]
    lines += (_calibration_lines(card) + _external_lines(card) + _profile_lines(card)
              + _equalisation_lines(card))
    if m.quality_gate:
        lines += ["## Quality check", "", m.quality_gate, ""]
    lines += ["## Limitations", ""] + [f"- {x}" for x in card.limitations] + [""]
    lines += ["## Technical details", "",
              f"- Task: {card.task}; outputs: {card.output_kind} over {', '.join(card.outputs)}; "
              f"window pooling: {card.pooling}.",
              f"- Features: {card.features.spectrogram.scale} spectrogram at "
              f"{card.features.spectrogram.rate} Hz, window {card.features.spectrogram.win_length} "
              f"samples, hop {card.features.spectrogram.hop_length}, "
              f"{card.features.spectrogram.n_bins} bins; model input "
              + ", ".join(f"{fc.input_shape}" for fc, _ in card.member_groups()) + ".",
              f"- Files: {', '.join(card.model_files)}; {t.artifact or ''}",
              f"- Made by: {card.description}",
              f"- Created {card.created} with " + ", ".join(f"{k} {v}" for k, v in card.versions.items()) + ".",
              ""]
    return "\n".join(lines)


def _start_lines(c) -> list[str]:
    """The card's "Fine-tuned from" section: the starting model against the adapted one on
    the same held-out recordings (a ``StartComparison``; none: no section)."""
    if c is None or c.start_overall is None:
        return []
    st = c.start or {}
    rows = [("starting model, its own threshold", c.start_overall),
            ("starting model, threshold chosen on the other folds", c.start_recalibrated),
            ("its fine-tuned member alone, before, threshold chosen on the other folds",
             c.start_member_recalibrated),
            ("adapted, out-of-fold threshold", c.adapted_overall),
            ("adapted, threshold chosen on the other folds", c.adapted_recalibrated)]
    out = ["## Fine-tuned from", "",
           f"Every model started from {st.get('name')} {st.get('version')} (member "
           f"{st.get('member')} of {st.get('members')}, {st.get('window_s')}-s windows; "
           f"{st.get('folder')}). Compared on the same held-out recordings: {c.how}.", "",
           "| | AUC | sensitivity | specificity | score | TN FP FN TP |", "|---|---|---|---|---|---|"]
    for name, b in rows:
        if b is not None:
            conf = " ".join(str(v) for row in (b.confusion or []) for v in row)
            out.append(f"| {name} | {_f(b.auc)} | {_pct(b.sensitivity)} | {_pct(b.specificity)} "
                       f"| {_f(b.score)} | {conf} |")
    return out + [""]


def write_model_card_md(model_dir) -> Path:
    from lungapp.fsutil import atomic_write_text

    card = load_card(model_dir)
    return atomic_write_text(Path(model_dir) / "MODEL_CARD.md", card_markdown(card))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lungapp.training.card_text MODEL_DIR")
    print(write_model_card_md(sys.argv[1]))
