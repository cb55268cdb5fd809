"""ACAV-1M curation: inputs → clips → aligned, captioned, labelled samples → WebDataset shards."""

from acav1m_hf import __version__ as __version__
