"""Atomic file writes: every file swinrt's Python tools write appears whole
or not at all (../shared/CLI.md: no partial output left behind)."""
import os
import tempfile


def write_atomic(path: str, write, suffix: str = ".tmp"):
    """Calls write(tmp) on a temporary file beside `path`, gives it the usual
    mode (umask applied; mkstemp's file is private) and renames it to `path`.
    The temporary file is removed if anything fails. Returns write's result."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".swinrt-", suffix=suffix, dir=directory)
    except OSError as e:
        raise OSError(f"{path}: cannot write there ({e.strerror or e})") from None
    os.close(fd)
    try:
        result = write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return result
