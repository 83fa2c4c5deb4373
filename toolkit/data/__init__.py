"""Datasets as cached, device-ready uint8 tensors (see `vtk_vision.data.datasets`)."""

from vtk_vision.data.datasets import DATASET_NAMES, Dataset, Split, load_dataset

__all__ = ["DATASET_NAMES", "Dataset", "Split", "load_dataset"]
