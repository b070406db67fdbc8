"""zoo-dilated: Dilated convolution, receptive fields, gridding-safe rates, DeepLabv3 with ASPP."""
