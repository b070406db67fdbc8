"""zoo-segmetrics: segmentation metrics (PA, MPA, MIoU, FWIoU, Dice) in one streaming pass.

Components: ``metric:segmentation`` and ``metric:confusion``. Importing this package is light;
``zoo.create("metric:segmentation", num_classes=21)`` imports torch.
"""
