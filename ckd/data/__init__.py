"""Data: sources, the pool/test split and the choice of which inputs the teacher is asked about."""

# The sources register themselves: one import line each.
from ckd.data import image_folder, table, text  # noqa: F401
from ckd.data.arrays import NpzArtifact, read_arrays, write_arrays
from ckd.data.artifacts import Pool, Selection, TestSet
from ckd.data.selection import SELECTIONS, select_for_teacher
from ckd.data.sources import SOURCES, Dataset, load_source
from ckd.data.split import split_pool_test

__all__ = [
    "SOURCES",
    "Dataset",
    "load_source",
    "split_pool_test",
    "SELECTIONS",
    "select_for_teacher",
    "read_arrays",
    "write_arrays",
    "NpzArtifact",
    "Pool",
    "TestSet",
    "Selection",
]
