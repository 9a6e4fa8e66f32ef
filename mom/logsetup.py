"""[logging]: where MOM's own log goes, without touching the host program's.

Only the ``mom`` logger is configured (its level and one handler of ours);
the root logger and every other logger are left as the embedding program
(VDSM) set them.  The handler is removed again on shutdown.
"""
from __future__ import annotations

import logging
import logging.handlers
import sys

from mom.config import ConfigError, Settings, parse_verbosity

LOGGER = "mom"
FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class LogSetup:
    def __init__(self, settings: Settings) -> None:
        self.logger = logging.getLogger(LOGGER)
        self.logger.setLevel(settings.verbosity)
        self.handler: logging.Handler | None = None
        target = settings.log
        if target == "stdio":
            # Inside a program that already logs (VDSM), MOM's records reach
            # its handlers through propagation; a second stdout copy would
            # only duplicate them.
            if not logging.getLogger().handlers:
                self.handler = logging.StreamHandler(sys.stderr)
        else:
            try:
                self.handler = logging.handlers.RotatingFileHandler(
                    target, maxBytes=settings.max_bytes,
                    backupCount=settings.backup_count)
            except OSError as err:
                raise ConfigError(f"[logging] log = {target!r} cannot be opened: {err}") from None
        if self.handler is not None:
            self.handler.setFormatter(logging.Formatter(FORMAT))
            self.logger.addHandler(self.handler)

    def set_verbosity(self, level: str | int) -> None:
        self.logger.setLevel(parse_verbosity(level))

    def close(self) -> None:
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.handler.close()
            self.handler = None
