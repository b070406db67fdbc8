"""Entry module of zoo-dilated: light, imports no torch."""

from zoo_core import component, hookimpl


@hookimpl
def zoo_components():
    return [
        component("model:dilated-resnet", "zoo_dilated.resnet:DilatedResNet",
                  summary="ResNet-18/34/50/101/152 with output stride 32, 16 or 8 by dilation",
                  tags=["vision", "backbone", "dilated"],
                  paper="https://arxiv.org/abs/1705.09914"),
        component("model:deeplabv3", "zoo_dilated.deeplab:DeepLabV3",
                  summary="DeepLabv3 / v3+ segmentation: dilated ResNet + ASPP (+ decoder)",
                  tags=["vision", "segmentation", "dilated"],
                  paper="https://arxiv.org/abs/1706.05587"),
        component("model:context-module", "zoo_dilated.context:ContextModule",
                  summary="Yu & Koltun context aggregation: 3x3 convs at rates 1,1,2,4,8,16,1",
                  tags=["vision", "segmentation", "dilated"],
                  paper="https://arxiv.org/abs/1511.07122"),
    ]
