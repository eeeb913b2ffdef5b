"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import errno
import os
import tempfile


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed over
    ``path`` once it is complete and flushed to disk. A process killed at any moment leaves
    either the old file or the whole new one under ``path`` (and at worst a stray
    ``.tmp-*`` file beside it), never a truncated one."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = _mode_for(path)
    if not os.path.isdir(directory):  # else mkstemp's error would name a temporary file, not this one
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: the folder {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}") from None
    try:
        os.fchmod(fd, mode)  # mkstemp makes files private (0600); a saved file is not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):  # a full disk's error names no file: say which, and that the old one stands
            raise OSError(e.errno, f"cannot write {path}: {e.strerror or e} (nothing was written: the file "
                                   f"there before, if any, is unchanged)") from None
        raise
    try:  # make the rename itself durable; not every filesystem lets a folder be opened
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _mode_for(path: str) -> int:
    """The permissions ``open(path, "w")`` would leave: those of the file being replaced, or
    for a new file 0666 less the umask (a checkpoint shared on a cluster stays readable)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)  # the only portable way to read it is to set it, and set it back
        os.umask(umask)
        return 0o666 & ~umask
