"""zoo-dilated: dilated convolution, receptive fields, gridding-safe rates, DeepLabv3 with ASPP.

    >>> import zoo_core as zoo
    >>> from zoo_dilated import rf, gridding
    >>> model = zoo.create("model:deeplabv3", preset="resnet50")
    >>> rf.receptive_field(zoo.create("model:dilated-resnet", preset="resnet101-os8",
    ...                                num_classes=0)).size
    (971, 971)
    >>> gridding.hdc_check((2, 4, 8)).ok
    False
"""
