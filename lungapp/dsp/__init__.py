"""Signal processing shared by the GUI and the model (no Qt here)."""

from lungapp.dsp.spectrogram import (  # noqa: F401
    SpectrogramConfig,
    StreamingSpectrogram,
    normalise,
    spectrogram,
)
