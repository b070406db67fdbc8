"""zoo-tokenizers: Byte-level BPE and WordPiece tokenizers, trained and loaded."""
