"""Labelled data: the label vocabulary (:mod:`lungapp.data.labels`) and the labelled-folder
readers (:mod:`lungapp.data.readers`). Plain Python; importing it decodes no audio."""

from lungapp.data.labels import (  # noqa: F401
    ABNORMAL,
    ALL_LABELS,
    BOTH,
    CAS,
    CLASSES_2,
    CLASSES_4,
    DAS,
    EVENT_TYPES,
    NORMAL,
    POOR,
    RECORD_LABELS,
    binary_label,
    event_flags,
    label_from_flags,
    normalise_event_type,
    normalise_label,
)
from lungapp.data.readers import (  # noqa: F401
    LAYOUTS,
    Dataset,
    Event,
    Example,
    detect_layout,
    read_folder,
)
