"""lungapp: lung auscultation with a local, honest model.

The core (audio, dsp, data, model, store, report) never imports Qt; the GUI lives in
:mod:`lungapp.gui` and the CLI in :mod:`lungapp.cli`.
"""

__version__ = "0.1.0"
