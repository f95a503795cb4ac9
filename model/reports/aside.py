"""PNG charts drawn aside: a helper process imports matplotlib (about 0.4 s) while the
run imports the model and solves, then draws the PNGs while the run explains its
shortfalls and writes the workbook and the page, so with a second core free the PNGs
add little to a run's wall time. The helper loads model/reports/png.py alone (numpy and
matplotlib: no pandas, no model) and only draws: it gets the run's own figures as plain
chart data, in batches as the run makes them, draws each batch as it arrives and
answers with the PNG files' bytes, which this process writes. Any
trouble with it (it cannot start, dies, fails or does not answer) and the PNGs are drawn
in this process instead, exactly as without it."""

from __future__ import annotations

import builtins
import logging
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from model.reports.charts import Figure

# The helper's file, found without importing it or model.reports.charts (numpy, pandas):
# the command line starts the helper before it imports those (0.4 s).
PNG_FILE = Path(__file__).with_name("png.py")

LOG = logging.getLogger(__name__)
WAIT_S = 120.0  # a helper that has not answered by then is stopped and the PNGs drawn here
# Load png.py by its path: importing it as model.reports.png would import the package (Pyomo's hooks).
_SERVE = ("import importlib.util as u; s = u.spec_from_file_location('rare_earth_png', {path!r}); "
          "m = u.module_from_spec(s); s.loader.exec_module(m); m.serve()")


class PngsAside:
    """One run's helper: start() it first, send() the figures as soon as they are made
    (in one batch or several), write() them as PNGs into the run folder, and stop() it in
    every case."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.figs: list[Figure] = []  # sent so far, in order

    def start(self) -> PngsAside:
        try:  # -P: the current folder's files do not shadow the modules the helper imports
            self.proc = subprocess.Popen([sys.executable, "-P", "-c", _SERVE.format(path=str(PNG_FILE))],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except Exception:  # no interpreter to start (an embedded Python), no process left: drawn here
            self.proc = None
        return self

    def send(self, figs: list[Figure]) -> None:
        """Have the helper draw these figures, after any sent before (it starts on each
        batch as it arrives)."""
        self.figs = self.figs + list(figs)
        if self.proc is None or not figs:
            return
        try:  # left open: communicate() closes it when the answer is read
            from model.reports.charts import png_chart
            self.proc.stdin.write(pickle.dumps([png_chart(f) for f in figs], protocol=pickle.HIGHEST_PROTOCOL))
            self.proc.stdin.flush()
        except Exception:  # a helper gone, a figure that does not pickle: drawn here
            self.stop()

    def write(self, folder: Path, figs: list[Figure]) -> list[Path]:
        """folder/<name>.png for each figure: the helper's when these are the figures it was
        sent, else drawn here."""
        t0 = time.perf_counter()
        sent = len(figs) == len(self.figs) and all(a is b for a, b in zip(figs, self.figs))
        answer = self._answer() if sent else None
        self.stop()  # done with it either way
        if answer is None or answer[0] != "ok" or [n for n, _ in answer[1]] != [f.name for f in figs]:
            LOG.debug("no PNGs from the helper process (%s); drawn here",
                      "no answer" if answer is None else answer[1] if answer[0] != "ok" else "other charts")
            from model.reports.charts import write_pngs
            return write_pngs({}, folder, figs)
        LOG.debug("PNG charts drawn by the helper process (waited %.2f s for them)", time.perf_counter() - t0)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{name}.png" for name, _ in answer[1]]
        for path, (_, data) in zip(paths, answer[1]):
            path.write_bytes(data)
        for category, message in answer[2]:  # the helper's warnings, raised here (run.log keeps them)
            cat = getattr(builtins, category, None)
            warnings.warn(message, cat if isinstance(cat, type) and issubclass(cat, Warning) else UserWarning,
                          stacklevel=2)
        return paths

    def _answer(self) -> tuple | None:
        if self.proc is None:
            return None
        try:
            out, _ = self.proc.communicate(timeout=WAIT_S)
            return pickle.loads(out) if self.proc.returncode == 0 else None
        except Exception:  # no answer, a late or a partial one: drawn here
            return None
        finally:
            self.stop()

    def stop(self) -> None:
        """End the helper if it runs (a run that writes no report, or fails)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        self.proc = None
