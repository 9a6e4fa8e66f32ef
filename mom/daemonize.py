"""``momd -d``: detach like a classic Unix daemon, and the pid file.

The detached process reports the outcome of its start-up back to the
process the user (or an init script) started, through a pipe: that process
exits 0 once MOM runs, or prints the daemon's one-line error and exits 2,
so a bad configuration is seen on the terminal even though the daemon's
own standard streams go to /dev/null.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

#: The start-up went well.
STARTED = b"ok"


class Startup:
    """How a start-up tells its outcome, once: on stderr, or through a pipe
    to the process that detached it."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = fd
        self.done = False

    def failed(self, message: str) -> int:
        """Report one ``momd: ...`` line; returns the exit status, 2."""
        if not self.done:
            self.done = True
            line = f"momd: {message}"
            if self._fd is None:
                print(line, file=sys.stderr)
            else:
                self._send(line.encode("utf-8", "replace"))
        return 2

    def succeeded(self) -> None:
        if not self.done:
            self.done = True
            if self._fd is not None:
                self._send(STARTED)

    def _send(self, data: bytes) -> None:
        fd, self._fd = self._fd, None
        assert fd is not None
        try:
            os.write(fd, data)
        except OSError:
            pass
        finally:
            os.close(fd)


def detach(run: Callable[[Startup], int]) -> int:
    """Run ``run(startup)`` in a detached process (double fork, new session,
    cwd /, standard streams on /dev/null).

    In the calling process this returns 0 once the daemon reported its
    start-up, 2 (after printing the daemon's error) if it failed.  In the
    daemon it returns what ``run`` returns.
    """
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child:
        os.close(write_fd)
        chunks = []
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
        os.close(read_fd)
        os.waitpid(child, 0)
        message = b"".join(chunks)
        if message == STARTED:
            return 0
        print(message.decode("utf-8", "replace")
              or "momd: the daemon ended during start-up", file=sys.stderr)
        return 2
    try:
        os.close(read_fd)
        os.setsid()                 # no controlling terminal
        if os.fork():
            os._exit(0)             # the session leader goes; its child can never
                                    # acquire a terminal again
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)
    except BaseException as err:    # report, never fall back into the caller
        Startup(write_fd).failed(f"cannot detach: {err}")
        os._exit(2)
    startup = Startup(write_fd)
    try:
        return run(startup)
    finally:
        if not startup.done:
            startup.failed("the daemon ended during start-up")


class PidFile:
    """The daemon's pid, written when MOM runs and removed when it stops."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._written = False

    def write(self) -> None:
        """Write the pid atomically; OSError if the file cannot be written."""
        pid = os.getpid()
        temporary = f"{self.path}.{pid}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{pid}\n".encode())
        finally:
            os.close(fd)
        try:
            os.replace(temporary, self.path)
        except OSError:
            os.unlink(temporary)
            raise
        self._written = True

    def remove(self) -> None:
        """Remove the file if it still holds this process's pid."""
        if not self._written:
            return
        self._written = False
        try:
            with open(self.path, encoding="ascii") as handle:
                if handle.read().strip() != str(os.getpid()):
                    return
            os.unlink(self.path)
        except (OSError, UnicodeDecodeError):
            pass
