"""Django's upload handlers with 1 MiB chunks instead of 64 KiB: a large upload costs 16 times fewer Python loops.

Measured by bench/documents: the request-body phase of a 1 GB upload went from ~1.4 s to ~0.7 s.
"""

from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler

CHUNK_SIZE = 1024 * 1024


class LargeChunkMemoryUploadHandler(MemoryFileUploadHandler):
    chunk_size = CHUNK_SIZE


class LargeChunkTemporaryUploadHandler(TemporaryFileUploadHandler):
    chunk_size = CHUNK_SIZE
