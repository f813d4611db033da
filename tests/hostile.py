"""Generated hostile artifacts (nothing stored on disk): tar members, headers, links, locks.

Each builder returns the bytes of a small tar+gzip layer; the hostile part is in the headers,
so a layer that claims gigabytes costs a few kilobytes.
"""

from __future__ import annotations

import gzip
import io
import tarfile


def member(name: str, type_: bytes = tarfile.REGTYPE, data: bytes = b"x", linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.mode = 0o644
    if type_ == tarfile.REGTYPE:
        info.size = len(data)
        return info, io.BytesIO(data)
    return info, None


def layer(*members: tuple, raw_prefix: bytes = b"") -> bytes:
    """A tar+gzip of ``members`` (after ``raw_prefix``, raw tar blocks written first)."""
    buf = io.BytesIO()
    buf.write(raw_prefix)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, data)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return out.getvalue()


def huge_header(type_: bytes, size: int = 2 << 30) -> bytes:
    """One raw tar header block of ``type_`` (GNU long name ``L``, pax ``x``) claiming ``size`` bytes of data,
    followed by a little of that data: the claim, not the bytes, is what a reader must refuse."""
    info = tarfile.TarInfo("././@LongLink")
    info.type = type_
    info.size = size
    block = info.tobuf(format=tarfile.GNU_FORMAT)
    return block[:512] + b"a" * 4096


def chain_to_root(levels: int = 20) -> list[tuple]:
    """Two links that each resolve inside when written one by one, and to ``/`` once both exist.

    ``up -> x/x/…/../..`` is inside while ``x`` does not exist (as many ``..`` as ``x``); ``x -> .`` is inside;
    together every ``x`` is the destination itself, so ``up`` climbs ``levels`` folders above it.
    """
    return [
        member("up", tarfile.SYMTYPE, linkname="x/" * levels + "../" * levels),
        member("x", tarfile.SYMTYPE, linkname="."),
    ]
