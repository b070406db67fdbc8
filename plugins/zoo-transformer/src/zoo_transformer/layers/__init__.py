"""Building blocks shared by the BERT family and the Transformer, one concept per file."""
