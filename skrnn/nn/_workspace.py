"""Buffers the compiled engine reuses from one batch to the next.

A training batch keeps megabytes of activations (states, cell states, gates) for
its backward pass. Allocated afresh for every batch, arrays that size go through
``mmap`` and come back as pages the kernel must fault in and zero: for short windows
that costs as much as the arithmetic on them, and two threads writing fresh pages
wait on each other in the page-fault path (a fit of T=14, H=64, B=256 took twice as
long in a fresh process as in one whose allocator had been warmed up). A
``Workspace`` lives for one ``fit`` (or one ``predict``) and hands out the same
memory for every batch.

Arrays handed out under one key are overwritten by the next request for that key,
so only the engine's own per-batch buffers (caches read by the same batch's
backward pass) come from here, never anything returned to a user. A workspace
belongs to one call in one thread; it is dropped when that call ends, so a fitted
estimator holds none of this memory.
"""

import numpy as np


class Workspace:
    """Flat buffers by key, grown on demand and reshaped for each request."""

    def __init__(self):
        self._bufs = {}

    def empty(self, key, shape, dtype):
        """An uninitialised C-contiguous array of ``shape`` (the memory of ``key``)."""
        n = 1
        for s in shape:
            n *= int(s)
        dtype = np.dtype(dtype)
        buf = self._bufs.get(key)
        if buf is None or buf.dtype != dtype or buf.size < n:
            buf = np.empty(max(n, 1), dtype=dtype)
            self._bufs[key] = buf
        return buf[:n].reshape(shape)

    @property
    def nbytes(self):
        """Bytes held."""
        return sum(b.nbytes for b in self._bufs.values())


def empty(ws, key, shape, dtype):
    """``ws.empty(key, shape, dtype)``, or a new array without a workspace."""
    if ws is None:
        return np.empty(shape, dtype=dtype)
    return ws.empty(key, shape, dtype)
