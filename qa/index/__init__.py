"""The saved index: FAISS vectors, the SQLite chunk store and a manifest, in one folder."""
