"""Content-addressed storage of document files: the interface, and the filesystem store used by default.

A file is stored under its SHA-256, so the same content is stored once, a stored file can be checked
against the hash the evidence log holds, and a name never says anything about the content.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

_HEX = frozenset("0123456789abcdef")


class StoreError(Exception):
    """The store cannot give back what it was asked for (missing, or its content no longer matches)."""


class DocumentStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotently) and return its SHA-256 in hex; the file is complete or absent."""

    def get(self, sha256: str) -> bytes:
        """The content stored under ``sha256``, checked against it; StoreError when missing or altered."""

    def exists(self, sha256: str) -> bool:
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(sha256: str) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or not set(sha256) <= _HEX:
        raise StoreError("not a SHA-256 in lower-case hex")
    return sha256


class FileSystemStore:
    """Files under ``root/ab/cd/<sha256>``, written to a temporary file, flushed to disk and renamed into place."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        h = _checked(sha256)
        return self.root / h[:2] / h[2:4] / h

    def put(self, data: bytes) -> str:
        h = sha256_hex(data)
        target = self.path(h)
        if target.exists():
            return h
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o440)
            # Atomic on POSIX: readers see the whole file or none; two writers of one content both succeed.
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(target.parent)
        return h

    def get(self, sha256: str) -> bytes:
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"no content stored under {sha256}") from None
        if sha256_hex(data) != sha256:
            raise StoreError(f"the content stored under {sha256} has been altered")
        return data

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def from_setting(value: str | None, instance_path: str | os.PathLike) -> DocumentStore:
    """The store XINMA_DOCUMENT_STORE names: a folder or a file:// URL; unset, <instance>/documents."""
    if not value:
        return FileSystemStore(Path(instance_path) / "documents")
    parsed = urlparse(value)
    if parsed.scheme in ("", "file"):
        return FileSystemStore(unquote(parsed.path) if parsed.scheme else value)
    raise ValueError(f"XINMA_DOCUMENT_STORE: unsupported store {parsed.scheme!r} (a folder or file:// URL)")
