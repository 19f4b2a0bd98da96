"""Benchmark datasets and the synthetic ``arith`` family, all normalised to :class:`Problem`.

>>> from ccpo_env.data import load_dataset
>>> ds = load_dataset("arith", split="train", level=2, limit=3)
>>> ds[0].problem  # doctest: +SKIP
'Compute (23*4)+(17*3).'

Benchmark sets resolve from ``data_dir=``, then ``$CCPO_DATA_DIR``, then the Hugging Face Hub.
"""

from ccpo_env.data.arith import (
    ArithDataset,
    arith_corrupt_thought,
    arith_one_op_solve,
    arith_oracle_thought,
    arith_thought_correct,
)
from ccpo_env.data.dataset import Dataset, DatasetArgumentError, DatasetNotFoundError, UnknownDatasetError
from ccpo_env.data.problem import Problem
from ccpo_env.data.registry import (
    DATA_DIR_ENV,
    check_dataset_args,
    dataset_splits,
    describe_datasets,
    list_datasets,
    load_dataset,
    pick_split,
    register_dataset,
)

__all__ = [
    "DATA_DIR_ENV",
    "ArithDataset",
    "Dataset",
    "DatasetArgumentError",
    "DatasetNotFoundError",
    "Problem",
    "UnknownDatasetError",
    "arith_corrupt_thought",
    "arith_one_op_solve",
    "check_dataset_args",
    "dataset_splits",
    "arith_oracle_thought",
    "arith_thought_correct",
    "describe_datasets",
    "list_datasets",
    "load_dataset",
    "pick_split",
    "register_dataset",
]
