"""What a run says goes through Python logging, under the `model` logger.

Two handlers: the console (the compact story on standard output, warnings and errors on
standard error; rich tables on a terminal) and a run's record (every line from DEBUG up,
timestamped, written as the run folder's run.log, the solver's log and Python warnings
included). Library use without either stays silent below WARNING, as Python's default.
Imports nothing from `model`: every step may log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

MODEL = "model"
VERBOSITY = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, default, -v
RUN_LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"
RUN_LOG_DATE = "%Y-%m-%d %H:%M:%S"


def is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ConsoleHandler(logging.Handler):
    """Plain lines: INFO to standard output, warnings and errors to standard error.
    The streams are looked up when a line is written (so a redirected sys.stdout is
    followed). A record with a `rich` attribute (a rich renderable, or a function
    making one) is drawn by rich when its stream is a terminal; one with `progress`
    set goes to standard error and, on a terminal, rewrites a single line in place."""

    def __init__(self, level: int = logging.INFO, out=None, err=None) -> None:
        super().__init__(level)
        self.out, self.err = out, err
        self.setFormatter(logging.Formatter("%(message)s"))
        self._open_line = None  # a terminal stream holding an unfinished progress line

    def _stream(self, record: logging.LogRecord):
        if record.levelno >= logging.WARNING or getattr(record, "progress", False):
            return self.err if self.err is not None else sys.stderr
        return self.out if self.out is not None else sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._stream(record)
            tty = is_tty(stream)
            progress = bool(getattr(record, "progress", False))
            if self._open_line is not None and not (progress and stream is self._open_line):
                self._open_line.write("\n")
                self._open_line = None
            renderable = getattr(record, "rich", None)
            if renderable is not None and tty:
                from rich.console import Console
                if callable(renderable):  # made only for a terminal (rich costs its import otherwise)
                    renderable = renderable()
                Console(file=stream, highlight=False, soft_wrap=True).print(renderable)
            elif progress and tty:
                stream.write("\r" + self.format(record).ljust(100))
                self._open_line = stream
            else:
                stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # logging must never stop a run
            self.handleError(record)

    def close(self) -> None:
        if self._open_line is not None:
            self._open_line.write("\n")
            self._open_line = None
        super().close()


class RunLog(logging.Handler):
    """Every record from DEBUG up, timestamped with its logger's name: run.log's text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter(RUN_LOG_FORMAT, RUN_LOG_DATE))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


@contextmanager
def _attached(handler: logging.Handler) -> Iterator[logging.Handler]:
    """The handler on the root logger (Python warnings and other libraries' warnings
    reach it too) and `model` records created from DEBUG up while the block runs."""
    root, model = logging.getLogger(), logging.getLogger(MODEL)
    old_level = model.level
    model.setLevel(logging.DEBUG)
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()
        if not any(isinstance(h, (ConsoleHandler, RunLog)) for h in root.handlers):
            model.setLevel(old_level)
            logging.captureWarnings(False)


@contextmanager
def console(verbosity: int = 0, out=None, err=None) -> Iterator[ConsoleHandler]:
    """The console while the block runs: -1 (-q) warnings and errors only, 0 the
    compact story, 1 (-v) everything, timings and the solver's log included."""
    with _attached(ConsoleHandler(VERBOSITY[max(-1, min(1, verbosity))], out, err)) as h:
        yield h


@contextmanager
def recording() -> Iterator[RunLog]:
    """Record every line said while the block runs (for a run folder's run.log)."""
    with _attached(RunLog()) as h:
        yield h
