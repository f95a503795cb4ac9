"""Every Highs object is made here, so HiGHS speaks through the log, never straight to
the terminal: its once-per-process banner and the log of a main solve (HiGHS's own
`log_file`) become DEBUG lines of the `model.highs` logger, which a run folder's run.log
keeps and `-v` shows.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
from pathlib import Path

import highspy

LOG = logging.getLogger("model.highs")
_banner_said = False


def _flush_c_stdout() -> None:
    """Flush C's stdio buffers (HiGHS prints with C stdio, which Python cannot see)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no C library handle
        pass


def quiet_highs() -> highspy.Highs:
    """A new Highs object that prints nothing: output off, and the banner HiGHS prints
    on the first construction in a process caught and logged."""
    global _banner_said
    if _banner_said:
        h = highspy.Highs()
    else:
        _banner_said = True
        sys.stdout.flush()
        with tempfile.TemporaryFile() as caught:
            saved = os.dup(1)
            os.dup2(caught.fileno(), 1)
            try:
                h = highspy.Highs()
                _flush_c_stdout()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            caught.seek(0)
            banner = caught.read().decode(errors="replace").strip()
        if banner:
            LOG.debug(banner)
    h.setOptionValue("output_flag", False)
    return h


def run_logged(h: highspy.Highs) -> None:
    """h.run(); when anyone listens to DEBUG (a run being recorded, or -v), HiGHS writes
    its log to a file (its `log_file` option), whose text is then logged."""
    if not LOG.isEnabledFor(logging.DEBUG):
        h.run()
        return
    with tempfile.TemporaryDirectory(prefix="highs_") as folder:
        path = Path(folder) / "highs.log"
        h.setOptionValue("log_to_console", False)
        h.setOptionValue("log_file", str(path))
        h.setOptionValue("output_flag", True)
        try:
            h.run()
        finally:
            h.setOptionValue("output_flag", False)
            h.setOptionValue("log_file", "")
        text = path.read_text(errors="replace").strip() if path.exists() else ""
    if text:
        LOG.debug("HiGHS log of the solve:\n%s", text)
