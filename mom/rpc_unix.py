"""The unix socket MOM serves on: created private, never clobbering.

The socket file is bound inside a fresh 0700 directory next to the final
path, given its mode there (0600, or 0660 with a group), and only then
linked into place, so it is never reachable with a wider mode whatever the
process umask, and the umask (process-wide, shared with VDSM's threads in
thread mode) is never touched.  At the final path only a stale socket (one
nobody answers on) is replaced; a live socket or any other kind of file is
a start-up error and is left as it is.
"""
from __future__ import annotations

import errno
import grp
import os
import shutil
import socket
import stat
import tempfile


class RpcBindError(Exception):
    """MOM cannot listen where ``rpc-port`` says; the message says why."""


def resolve_group(group: str | int | None) -> int | None:
    """A group name or id as a gid; RpcBindError for an unknown name."""
    if group is None or group == "":
        return None
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise RpcBindError(f"rpc-socket-group {group!r}: no such group") from None


def probe(path: str) -> str:
    """What is at ``path``: 'absent', 'stale' (a socket nobody answers on),
    'live', or 'other' (not a socket)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    if not stat.S_ISSOCK(st.st_mode):
        return "other"
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(1.0)
    try:
        client.connect(path)
    except ConnectionRefusedError:
        return "stale"
    except FileNotFoundError:
        return "absent"
    except TimeoutError:
        return "live"           # someone listens, with a full backlog
    except OSError as err:
        raise RpcBindError(f"cannot listen on {path}: cannot tell whether the socket there "
                           f"is in use: {err.strerror or err}") from None
    else:
        return "live"
    finally:
        client.close()


def bind_unix(path: str, backlog: int,
              group: str | int | None = None) -> tuple[socket.socket, tuple[int, int]]:
    """A listening unix socket at ``path``, mode 0600 (0660 and the group's
    with ``group``), and the (device, inode) of its file for remove_own();
    RpcBindError, with nothing changed, when that cannot be."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise RpcBindError(f"cannot listen on {path}: directory {directory} does not exist")
    gid = resolve_group(group)
    state = probe(path)
    if state == "live":
        raise RpcBindError(f"cannot listen on {path}: another process (a running MOM?) "
                           "is serving on it")
    if state == "other":
        raise RpcBindError(f"cannot listen on {path}: it exists and is not a socket; "
                           "left untouched (remove it if nothing needs it)")
    try:
        private = tempfile.mkdtemp(prefix=".mom", dir=directory)       # mode 0700
    except OSError as err:
        raise RpcBindError(f"cannot listen on {path}: cannot create a file in "
                           f"{directory}: {err.strerror or err}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        temporary = os.path.join(private, "s")
        sock.bind(temporary)
        if gid is not None:
            os.chown(temporary, -1, gid)
            os.chmod(temporary, 0o660)
        else:
            os.chmod(temporary, 0o600)
        sock.listen(backlog)
        if state == "stale":
            os.replace(temporary, path)         # atomic: the stale socket is gone
        else:
            os.link(temporary, path)            # fails if something appeared meanwhile
        st = os.lstat(path)
    except OSError as err:
        sock.close()
        if err.errno == errno.EEXIST:
            raise RpcBindError(f"cannot listen on {path}: a file appeared there while "
                               "MOM was starting; left untouched") from None
        raise RpcBindError(f"cannot listen on {path}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return sock, (st.st_dev, st.st_ino)


def remove_own(path: str, inode: tuple[int, int]) -> None:
    """Remove ``path`` if it is still the socket file bind_unix() made (a
    socket another MOM put there since is left alone)."""
    try:
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == inode:
            os.unlink(path)
    except OSError:
        pass
