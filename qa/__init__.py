"""Semantic retrieval question answering over Chinese news, with citations."""

__version__ = "0.1.0"
