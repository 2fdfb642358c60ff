"""Process-wide defaults for blockwise jobs: ``bw.config.set(memory_limit="4GiB")``.

Values set here are passed to every job as the command line's flags would be; the
``BLOCKWISE_*`` environment variables apply below them, as in the CLI
(``BLOCKWISE_MEMORY_LIMIT``, ``BLOCKWISE_MEMORY_TARGET``, ...).
"""

from __future__ import annotations

import threading
from typing import Any

#: The settings ``config.set`` accepts, and the flag each becomes.
KNOWN = {
    "memory_limit": "--memory-limit",
    "memory_target": "--memory-target",
    "memory_spill": "--memory-spill",
    "memory_pause": "--memory-pause",
    "memory_terminate": "--memory-terminate",
    "spill_dir": "--spill-dir",
    "spill_compression": "--spill-compression",
    "threads": "--threads",
    "progress": None,
}


class _Restore:
    """What ``config.set`` returns: restores the previous values on ``__exit__``."""

    def __init__(self, config: "Config", previous: dict[str, Any]):
        self._config = config
        self._previous = previous

    def __enter__(self) -> "Config":
        return self._config

    def __exit__(self, *exc: object) -> None:
        with self._config._lock:
            for key, value in self._previous.items():
                if value is _UNSET:
                    self._config._values.pop(key, None)
                else:
                    self._config._values[key] = value


_UNSET = object()


class Config:
    """Defaults for every job; ``set`` works as a statement or a context manager."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def set(self, **values: Any) -> _Restore:
        unknown = sorted(set(values) - set(KNOWN))
        if unknown:
            raise TypeError(
                f"unknown blockwise setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(KNOWN))}"
            )
        with self._lock:
            previous = {k: self._values.get(k, _UNSET) for k in values}
            self._values.update(values)
        return _Restore(self, previous)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(key, default)

    def job_options(self) -> dict[str, Any]:
        """The settings that become job flags."""
        with self._lock:
            return {k: v for k, v in self._values.items() if KNOWN.get(k)}


config = Config()
