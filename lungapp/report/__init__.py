"""Reports: a patient's visit as a PDF made with Qt's own PDF writer.

:mod:`lungapp.report.content` gathers what a report shows from the store (plain Python);
:mod:`lungapp.report.body_map` and :mod:`lungapp.report.pdf` draw it with QPainter, so this
package imports Qt (the import-linter contract lets only the ``report`` command reach it,
lazily)."""
