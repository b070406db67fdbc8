"""Entry module of zoo-segmetrics: light, imports no torch."""

from zoo_core import component, hookimpl

_FCN = "Long, Shelhamer, Darrell. Fully Convolutional Networks for Semantic Segmentation. CVPR 2015"


@hookimpl
def zoo_components():
    return [
        component("metric:segmentation", "zoo_segmetrics.segmentation:SegmentationMetric",
                  summary="PA, MPA, MIoU, FWIoU, Dice, precision, recall from one streaming "
                          "confusion matrix",
                  tags=["segmentation", "iou", "dice", "distributed"], paper=_FCN),
        component("metric:confusion", "zoo_segmetrics.confusion:ConfusionMatrix",
                  summary="streaming pixel confusion matrix with PNG plot and per-class table",
                  tags=["segmentation", "confusion-matrix", "plot"], paper=_FCN),
    ]
