"""Datasets as cached, device-ready uint8 tensors (see `vtk_vision.data.datasets`)."""

from vtk_vision.data.datasets import Dataset, Split, load_dataset
from vtk_vision.data.entries import DATASETS, DatasetEntry, dataset_names

__all__ = ["DATASETS", "DatasetEntry", "Dataset", "Split", "dataset_names", "load_dataset"]
