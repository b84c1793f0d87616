"""Real history files in bad states: damaged pages, unreadable files, files that are not databases."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

from gpt_oss_desktop.app.history import ChatStore

PAGE_SIZE = 4096  # SQLite's default page size, which the store keeps


def write_damaged_history(path: Path, *, chats: int = 31, seed: int = 1) -> list[int]:
    """A history of ``chats`` chats (six messages of 0.1-36 KB each, so some span overflow pages), closed cleanly
    (the WAL is checkpointed into the file), then eight pages past the schema overwritten with random bytes, as a
    failing disk or a bad copy would. Returns the chat ids.

    The seed is fixed so that the damage hits table b-tree and overflow pages the same way on every run.
    """
    rng = random.Random(seed)
    ids: list[int] = []
    with ChatStore(path) as store:
        for index in range(chats):
            chat = store.create_chat(f"chat {index}")
            ids.append(chat.id)
            for turn in range(6):
                role = "user" if turn % 2 == 0 else "assistant"
                store.add_message(chat.id, role, f"message {index}.{turn} " + "lorem ipsum " * rng.randint(10, 3000))
    data = bytearray(path.read_bytes())
    pages = len(data) // PAGE_SIZE
    for page in rng.sample(range(3, pages), 8):
        offset = page * PAGE_SIZE + 100
        data[offset : offset + 500] = rng.randbytes(500)
    path.write_bytes(bytes(data))
    return ids


def write_crashed_history(path: Path, title: str) -> None:
    """A history whose chat ``title`` is only in its -wal file, as a crash leaves it: the pair is copied while the
    store is open (a few small commits stay far below SQLite's automatic checkpoint), which is what the disk holds
    if the app dies then."""
    source = path.with_name("source.sqlite3")
    with ChatStore(source) as store:
        store.create_chat(title)
        shutil.copyfile(source, path)
        shutil.copyfile(f"{source}-wal", f"{path}-wal")
    for leftover in source.parent.glob(source.name + "*"):
        leftover.unlink()


# Linux capabilities that let root read and write any file regardless of its mode.
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPGET = 125  # x86-64 syscall numbers
_SYS_CAPSET = 126


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capabilities(libc: ctypes.CDLL, data: ctypes.Array[_CapData], *, write: bool) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    if libc.syscall(_SYS_CAPSET if write else _SYS_CAPGET, ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget/capset failed")


@contextlib.contextmanager
def file_modes_enforced() -> Iterator[None]:
    """Make ``chmod 000`` bind this thread even when the tests run as root (as in CI containers).

    Root reads any file through CAP_DAC_OVERRIDE; dropping it (and CAP_DAC_READ_SEARCH) from this thread's effective
    set makes the kernel check file modes as for any user, so an unreadable file is really unreadable to the code
    under test. Capabilities are per thread on Linux; they stay permitted and are raised again on exit.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    data = (_CapData * 2)()
    _capabilities(libc, data, write=False)
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    _capabilities(libc, data, write=True)
    try:
        yield
    finally:
        data[0].effective = saved
        _capabilities(libc, data, write=True)
