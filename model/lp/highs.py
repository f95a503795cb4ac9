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
import numpy as np

LOG = logging.getLogger("model.highs")
_banner_said = False
# HiGHS starts one thread scheduler per process, with the `threads` option of the first
# solve, and refuses (kError, status "Not Set") a later solve asking for another count.
# Every Highs made here asks for the same count; a case asking for another resets it.
_threads = 1


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
    h.setOptionValue("threads", _threads)
    return h


def use_threads(h: highspy.Highs, threads: int) -> None:
    """Solve with `threads` threads, restarting HiGHS's scheduler when it runs another count."""
    global _threads
    if threads != _threads:
        highspy.Highs.resetGlobalScheduler(True)
        _threads = threads
    h.setOptionValue("threads", threads)


def run_logged(h: highspy.Highs) -> None:
    """h.run(); when anyone listens to DEBUG (a run being recorded, or -v), HiGHS writes
    its log to a file (its `log_file` option), whose text is then logged."""
    if not LOG.isEnabledFor(logging.DEBUG):
        _run(h)
        return
    with tempfile.TemporaryDirectory(prefix="highs_") as folder:
        path = Path(folder) / "highs.log"
        h.setOptionValue("log_to_console", False)
        h.setOptionValue("log_file", str(path))
        h.setOptionValue("output_flag", True)
        try:
            _run(h)
        finally:
            h.setOptionValue("output_flag", False)
            h.setOptionValue("log_file", "")
        text = path.read_text(errors="replace").strip() if path.exists() else ""
    if text:
        LOG.debug("HiGHS log of the solve:\n%s", text)


def _run(h: highspy.Highs) -> None:
    if h.run() == highspy.HighsStatus.kError and status_name(h) == "kNotset":
        # Another Highs in this process (the caller's own, a Pyomo solver interface) may
        # have started HiGHS's scheduler with another thread count: restart it once.
        highspy.Highs.resetGlobalScheduler(True)
        if h.run() == highspy.HighsStatus.kError and status_name(h) == "kNotset":
            LOG.warning("HiGHS refused to start the solve (kError before any status): see run.log")


def status_name(h: highspy.Highs) -> str:
    """HiGHS's model status as its enum name (kOptimal, kInfeasible, ...)."""
    return str(h.getModelStatus()).split(".")[-1]


def pass_model(h: highspy.Highs, lp: highspy.HighsLp) -> str | None:
    """Load an LP into HiGHS: None when it took the whole model, else what it refused,
    in words (it refuses matrix values of 1e15 or more and loads nothing)."""
    status = h.passModel(lp)
    if status != highspy.HighsStatus.kError and h.getNumCol() == lp.num_col_:
        return None
    a = np.abs(np.asarray(lp.a_matrix_.value_, float))
    cost = np.abs(np.asarray(lp.col_cost_, float))
    bounds = np.abs(np.concatenate([np.asarray(v, float) for v in
                                    (lp.col_lower_, lp.col_upper_, lp.row_lower_, lp.row_upper_)]))
    parts = []
    if a.size and a.max() >= 1e15:
        parts.append(f"a constraint coefficient of {a.max():.3g} (HiGHS takes magnitudes below 1e15)")
    if cost.size and cost.max() >= 1e20:
        parts.append(f"a cost of {cost.max():.3g} per unit (HiGHS reads 1e20 and above as infinite)")
    big = bounds[np.isfinite(bounds) & (bounds >= 1e20)]
    if big.size:
        parts.append(f"a bound of {big.max():.3g} (HiGHS reads 1e20 and above as infinite)")
    return "the solver refused the model: " + ("; ".join(parts) if parts else
                                               f"HiGHS status {status} on loading it (see run.log)")


def basic_columns(h: highspy.Highs, n: int) -> np.ndarray:
    """Mask of the columns basic in h's optimal basis."""
    basic = np.zeros(n, bool)
    status, var = h.getBasicVariables()
    if status == highspy.HighsStatus.kOk:
        var = np.asarray(var)
        basic[var[var >= 0]] = True
    else:  # reading the basis vector costs a Python object per column: only as a fallback
        basic[:] = [s == highspy.HighsBasisStatus.kBasic for s in h.getBasis().col_status]
    return basic


def warm_copy(whole: highspy.Highs, A, c: np.ndarray, lo: np.ndarray, up: np.ndarray,
              rl: np.ndarray, ru: np.ndarray) -> tuple[highspy.Highs, str | None]:
    """A HiGHS holding min c x s.t. rl <= A x <= ru, lo <= x <= up (A a scipy CSC array)
    under the whole model's options, set for warm dual simplex re-solves from a basis
    (no presolve: a warm start needs none): (highs, None) or what it refused."""
    h = quiet_highs()
    h.passOptions(whole.getOptions())
    for name, value in (("output_flag", False), ("log_file", ""), ("solver", "simplex"), ("presolve", "off")):
        h.setOptionValue(name, value)
    return h, pass_model(h, highs_lp(A, c, lo, up, rl, ru))


def highs_lp(A, c: np.ndarray, lo: np.ndarray, up: np.ndarray, rl: np.ndarray, ru: np.ndarray,
             offset: float = 0.0) -> highspy.HighsLp:
    """min c x + offset s.t. rl <= A x <= ru, lo <= x <= up (A a scipy CSC array) as a HighsLp."""
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = A.shape
    lp.col_cost_ = np.asarray(c, float)
    lp.col_lower_, lp.col_upper_ = np.asarray(lo, float), np.asarray(up, float)
    lp.row_lower_, lp.row_upper_ = np.asarray(rl, float), np.asarray(ru, float)
    lp.offset_ = float(offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    return lp
