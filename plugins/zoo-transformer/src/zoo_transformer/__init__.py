"""zoo-transformer: BERT and its variants, the Transformer encoder-decoder, MLM pretraining."""
