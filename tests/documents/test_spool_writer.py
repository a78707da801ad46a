"""The spool's writer: staged, written by a side thread, with O_DIRECT where the file system has it."""

import errno
import os
import tempfile
import threading
from pathlib import Path

import pytest

from teleexpertise.documents.side_thread import SideThread
from teleexpertise.documents.spool_writer import ALIGN, STAGE_SIZE, SpoolWriter

LARGEST = 1024 * 1024 + 16  # a sealed chunk


def _file_system(path: Path) -> str:
    """The type of the file system holding `path`, from /proc/mounts (the longest mount point above it)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount_point, fs_type = line.split()[:3]
        if str(path).startswith(mount_point.rstrip("/") + "/") and len(mount_point) > len(best):
            best, kind = mount_point, fs_type
    return kind


def _write(directory: Path, pieces: list[int], *, reserve: bool) -> tuple[Path, bytes, SpoolWriter]:
    path = directory / "spool.bin"
    writer = SpoolWriter(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), largest=LARGEST)
    data = os.urandom(sum(pieces))
    position = 0
    for size in pieces:
        piece = data[position : position + size]
        if reserve:
            view = writer.reserve(size)
            view[:] = piece
            view.release()
            writer.commit(size)
        else:
            writer.write(piece)
        position += size
    assert writer.close() == len(data)
    return path, data, writer


SHAPES = {
    "empty": [],
    "one byte": [1],
    "one block": [ALIGN],
    "header and sealed chunks": [17] + [LARGEST] * 20 + [12_345],  # several staging buffers, an odd tail
    "a block short of a stage": [STAGE_SIZE - ALIGN - 1, 3],
    "many small pieces": [4093] * 3000,
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reserve", [True, False], ids=["reserve", "write"])
def test_the_file_holds_exactly_what_was_written(tmp_path, shape, reserve):
    path, data, _ = _write(tmp_path, SHAPES[shape], reserve=reserve)
    assert path.read_bytes() == data


@pytest.mark.skipif(_file_system(Path(tempfile.gettempdir())) not in {"ext4", "xfs", "btrfs"},
                    reason="O_DIRECT is only expected on a local disk file system")
def test_a_local_disk_is_written_around_the_page_cache(tmp_path):
    _, _, writer = _write(tmp_path, [17, LARGEST, 99], reserve=True)
    assert writer.direct


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "ordinary"])
def test_ordinary_writes_make_the_same_file(tmp_path, direct):
    path = tmp_path / "spool.bin"
    writer = SpoolWriter(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), largest=LARGEST, direct=direct)
    data = os.urandom(3 * STAGE_SIZE + 5)
    for start in range(0, len(data), LARGEST):
        writer.write(data[start : start + LARGEST])
    writer.close()
    assert path.read_bytes() == data and (writer.direct or not direct)


def test_a_file_that_refuses_o_direct_gets_ordinary_writes():
    """Linux refuses O_DIRECT on /dev/null as some file systems do: the writer goes on without it."""
    writer = SpoolWriter(os.open("/dev/null", os.O_WRONLY), largest=LARGEST)
    assert not writer.direct
    for _ in range(20):
        writer.write(os.urandom(LARGEST))
    with pytest.raises(OSError) as raised:
        writer.close()
    assert raised.value.errno == errno.EINVAL  # every write went through; only the final fsync has no meaning here


def test_a_failing_disk_is_reported_to_the_caller_and_nothing_hangs():
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    writer = SpoolWriter(os.open("/dev/full", os.O_WRONLY), largest=LARGEST)
    with pytest.raises(OSError) as raised:
        for _ in range(4 * STAGE_SIZE // LARGEST):  # several buffers: the thread fails on the first
            writer.write(os.urandom(LARGEST))
        writer.close()
    assert raised.value.errno == errno.ENOSPC
    writer.abort()  # closed already: nothing happens


def test_a_side_thread_error_reaches_the_producer_without_blocking_it():
    seen = []

    def consume(item):
        if item == 3:
            raise ValueError("item 3 is bad")
        seen.append(item)

    side = SideThread(consume, "test-side", depth=1)
    with pytest.raises(ValueError, match="item 3"):
        for item in range(100):  # the queue holds one: the producer would wait forever on a dead thread
            side.put(item)
        side.close()
    with pytest.raises(ValueError, match="item 3"):
        side.close()  # still failed: the error is not forgotten once told
    assert seen == [0, 1, 2]


def test_a_side_thread_keeps_the_order_and_stops_on_close():
    seen = []
    side = SideThread(seen.append, "test-side")
    for item in range(1000):
        side.put(item)
    side.close()
    assert seen == list(range(1000))
    assert not any(thread.name == "test-side" for thread in threading.enumerate())


def test_a_side_thread_does_the_first_item_itself_and_starts_a_thread_for_the_next():
    """A one-chunk upload (a photo, a short PDF) is hashed and written without starting threads."""
    consumers = []
    side = SideThread(lambda item: consumers.append((item, threading.current_thread().name)), "test-side")
    side.put("first")
    assert consumers == [("first", threading.current_thread().name)]
    assert not any(thread.name == "test-side" for thread in threading.enumerate())
    side.put("second")
    side.close()
    assert consumers[1] == ("second", "test-side")


def test_a_side_thread_error_on_the_producers_thread_is_kept_too():
    def consume(item):
        raise ValueError(f"{item} is bad")

    side = SideThread(consume, "test-side")
    with pytest.raises(ValueError, match="first is bad"):
        side.put("first")
    with pytest.raises(ValueError, match="first is bad"):
        side.put("second")  # dropped: the error stands
    with pytest.raises(ValueError, match="first is bad"):
        side.close()
    assert not any(thread.name == "test-side" for thread in threading.enumerate())
