"""The progress display of long computations: ``tqdm``'s (a notebook widget in
Jupyter, a bar on stderr in a terminal) where it is installed, plain text otherwise.
Switched off with ``bw.config.set(progress=False)``.

The extension calls the display's ``update(done, total, unit, message)`` while the
job runs (``unit`` is ``"bytes"`` of input or ``"tasks"``); nothing is shown for a
job that ends within ``DELAY_S``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

from ._config import config

#: A job shorter than this shows nothing.
DELAY_S = 1.0
#: Plain text where stderr is not a terminal (a notebook without tqdm, a log): a line
#: at most this often.
PLAIN_EVERY_S = 5.0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class _Plain:
    """Text: one line redrawn in a terminal, a line every ``PLAIN_EVERY_S`` elsewhere."""

    def __init__(self, desc: str, stream: Any):
        self._desc = desc
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0
        self._width = 0

    def show(self, done: int, total: int, unit: str, message: str, final: bool = False) -> None:
        now = time.monotonic()
        if not self._tty and not final and now - self._last < PLAIN_EVERY_S:
            return
        self._last = now
        count = f"{_size(done)}/{_size(total)}" if unit == "bytes" else f"{done}/{total} tasks"
        pct = 100.0 * done / total if total else 100.0
        line = f"{self._desc}: {pct:5.1f}% {count} ({message})"
        if self._tty:
            pad = max(0, self._width - len(line))
            self._stream.write("\r" + line + " " * pad)
            self._width = len(line)
            if final:
                self._stream.write("\n")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass


class _Tqdm:
    """``tqdm.auto``: a widget in Jupyter, a bar on stderr in a terminal."""

    def __init__(self, tqdm: Callable[..., Any], desc: str, total: int, unit: str):
        bytes_ = unit == "bytes"
        self._bar = tqdm(
            total=total,
            desc=desc,
            unit="B" if bytes_ else " tasks",
            unit_scale=bytes_,
            unit_divisor=1024,
            leave=False,
            file=sys.stderr,
        )

    def show(self, done: int, total: int, unit: str, message: str, final: bool = False) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _tqdm() -> Optional[Callable[..., Any]]:
    """tqdm's display where it draws well: a notebook (a widget), or a terminal.
    Into a pipe or a log its redrawn frames would pile up: plain lines go there."""
    in_notebook = "ipykernel" in sys.modules
    if not in_notebook and not getattr(sys.stderr, "isatty", lambda: False)():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Display:
    """What the extension reports progress to: shows nothing for ``DELAY_S``, then
    the best display available. A context manager; closing it after a job that
    succeeded shows the count complete."""

    def __init__(self, desc: str, stream: Any = None, use_tqdm: bool = True):
        self._desc = desc
        self._stream = stream if stream is not None else sys.stderr
        self._use_tqdm = use_tqdm
        self._start = time.monotonic()
        self._shown: Any = None
        self._last: Optional[tuple[int, int, str, str]] = None

    def update(self, done: int, total: int, unit: str, message: str) -> None:
        done = min(done, total)
        self._last = (done, total, unit, message)
        if self._shown is None:
            if time.monotonic() - self._start < DELAY_S:
                return
            tqdm = _tqdm() if self._use_tqdm else None
            self._shown = (
                _Tqdm(tqdm, self._desc, total, unit) if tqdm else _Plain(self._desc, self._stream)
            )
        self._shown.show(done, total, unit, message)

    def __enter__(self) -> "Display":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self._shown is None:
            return
        if exc_type is None and self._last is not None:
            _, total, unit, message = self._last
            self._shown.show(total, total, unit, message, final=True)
        self._shown.close()


def display(desc: str, show: Optional[bool] = None) -> Optional[Display]:
    """A display for a job, or ``None`` when progress is switched off: by ``show``
    (a call's ``progress=`` option) when given, else by ``config``."""
    if show is None:
        show = config.get("progress", True)
    if not show:
        return None
    return Display(desc)


def run(
    desc: str, call: Callable[[Optional[Callable[..., None]]], Any], show: Optional[bool] = None
) -> Any:
    """Runs ``call(progress_callback)`` with a display, when one is wanted."""
    shown = display(desc, show)
    if shown is None:
        return call(None)
    with shown:
        return call(shown.update)
