"""One file per FER2013 release format, each a reader returning `base.ReadResult` (source split → `Split`), and
FER+'s votes over FER2013's pixels (`ferplus.py`); imports only fer.data.splits and the leaves (errors, labels,
registry)."""

from fer.data.readers.base import ReadResult
from fer.data.readers.fer2013 import read_fer2013
from fer.data.readers.folder import read_folder
from fer.data.readers.hw3 import read_hw3

__all__ = ["ReadResult", "read_fer2013", "read_folder", "read_hw3"]
