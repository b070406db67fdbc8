"""zoo-segmetrics: Segmentation metrics: PA, MPA, MIoU, FWIoU, Dice in one streaming pass."""
