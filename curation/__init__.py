"""ACAV-1M curation: inputs → clips → aligned, captioned, labelled samples → WebDataset shards."""

__version__ = "0.1.0"
