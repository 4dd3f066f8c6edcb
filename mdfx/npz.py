"""Writing ``.npz`` archives from a dict of arrays, whatever the names.

``numpy.savez(file, **arrays)`` passes the names as keyword arguments: an array named
``allow_pickle`` is taken as that option (and silently not written), one named ``file``
collides with the first parameter (TypeError). Here the names are archive member names
only, so every name a model may hold is written as it is.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import IO

import numpy as np


def write_npz(file: IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to the open binary ``file`` as an ``.npz`` (what ``numpy.load`` reads back)."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
