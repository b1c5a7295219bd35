"""Corpus files -> Document -> Chunk. Pure functions; no model is loaded here."""
