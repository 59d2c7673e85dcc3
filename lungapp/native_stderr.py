"""Lines that native libraries write straight to file descriptor 2 (mpg123 inside
libsndfile: "Warning: Xing stream size off by more than 1%...", PortAudio's raw
messages) turned into the app's own messages: :func:`routed` captures fd 2 around a
library call and hands each captured line to the caller, who says it in the app's words,
naming the file. Python's ``sys.stderr`` is flushed first, so nothing of ours is captured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

#: The logger the routed lines go to (without a handler configured, Python prints the
#: message alone on stderr: one line in the app's words).
log = logging.getLogger("lungapp.native")
_lock = threading.RLock()  # fd 2 is process-wide: one redirection at a time (nesting is fine)
_said: set[str] = set()


@contextlib.contextmanager
def routed(on_line: Callable[[str], None]) -> Iterator[None]:
    """Redirect fd 2 to a temporary file inside the block, then pass each non-empty line
    the block's native code wrote there to ``on_line`` (after fd 2 is restored)."""
    with _lock, tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:  # also when the call failed: its library's words may say why
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    on_line(line.strip())


def warn_once(message: str) -> None:
    """Log ``message`` as a warning the first time this process sees it (a file opened
    twice, for its header then its samples, is reported once)."""
    if message not in _said:
        _said.add(message)
        log.warning(message)
