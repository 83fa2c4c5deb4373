"""Datasets as cached, device-ready uint8 tensors (see `toolkit.data.datasets`)."""

from toolkit.data.datasets import DATASET_NAMES, Dataset, Split, load_dataset

__all__ = ["DATASET_NAMES", "Dataset", "Split", "load_dataset"]
