"""Entry module of zoo-face: light, imports no torch."""

from zoo_core import component, hookimpl

_ARC = "https://arxiv.org/abs/1801.07698"


@hookimpl
def zoo_components():
    return [
        component("loss:softmax", "zoo_face.softmax:Softmax",
                  summary="linear layer + cross-entropy over identities (baseline)",
                  tags=["face", "margin-loss"]),
        component("loss:l-softmax", "zoo_face.softmax:LSoftmax",
                  summary="L-Softmax: multiplicative angular margin psi(theta), lambda annealing",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/1612.02295"),
        component("loss:sphereface", "zoo_face.softmax:SphereFace",
                  summary="SphereFace / A-Softmax: normalised centres, integer angular margin",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/1704.08063"),
        component("loss:normface", "zoo_face.additive:NormFace",
                  summary="NormFace: normalised softmax with scale s",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/1704.06369"),
        component("loss:cosface", "zoo_face.additive:CosFace",
                  summary="CosFace / AM-Softmax: s * (cos(theta) - m)",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/1801.09414"),
        component("loss:arcface", "zoo_face.additive:ArcFace",
                  summary="ArcFace: s * cos(theta + m), easy margin and monotonic fallback",
                  tags=["face", "margin-loss"], paper=_ARC),
        component("loss:combined-margin", "zoo_face.additive:CombinedMargin",
                  summary="combined margin: s * (cos(m1 * theta + m2) - m3)",
                  tags=["face", "margin-loss"], paper=_ARC),
        component("loss:subcenter-arcface", "zoo_face.additive:SubCenterArcFace",
                  summary="sub-center ArcFace: k centres per class, max over them",
                  tags=["face", "margin-loss"],
                  paper="https://www.ecva.net/papers/eccv_2020/papers_ECCV/papers/123560715.pdf"),
        component("loss:adaface", "zoo_face.adaptive:AdaFace",
                  summary="AdaFace: margin adapted to the feature norm (EMA batch statistics)",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/2204.00964"),
        component("loss:magface", "zoo_face.adaptive:MagFace",
                  summary="MagFace: magnitude-aware angular margin and regulariser",
                  tags=["face", "margin-loss"], paper="https://arxiv.org/abs/2103.06627"),
        component("model:iresnet", "zoo_face.iresnet:IResNet",
                  summary="IResNet-18/34/50/100 face backbone, BN-Dropout-FC-BN 512-d head",
                  tags=["face", "backbone", "vision"], paper=_ARC),
        component("model:mobilefacenet", "zoo_face.mobilefacenet:MobileFaceNet",
                  summary="MobileFaceNet: inverted residuals and global depthwise conv",
                  tags=["face", "backbone", "vision", "mobile"],
                  paper="https://arxiv.org/abs/1804.07573"),
        component("model:deepface", "zoo_face.deepface:DeepFace",
                  summary="DeepFace: locally connected layers, 4096-d feature (Taigman 2014)",
                  tags=["face", "backbone", "vision"],
                  paper="https://openaccess.thecvf.com/content_cvpr_2014/html/Taigman_DeepFace_Closing_the_2014_CVPR_paper.html"),
        component("model:deepid", "zoo_face.deepid:DeepID",
                  summary="DeepID: 160-d feature fed by conv3 and conv4 (Sun 2014)",
                  tags=["face", "backbone", "vision"],
                  paper="https://openaccess.thecvf.com/content_cvpr_2014/html/Sun_Deep_Learning_Face_2014_CVPR_paper.html"),
        component("model:mtcnn", "zoo_face.mtcnn:MTCNN",
                  summary="MTCNN face detector: P-Net/R-Net/O-Net cascade, five landmarks",
                  tags=["face", "detection", "vision"], paper="https://arxiv.org/abs/1604.02878"),
        component("metric:verification", "zoo_face.verification:Verification",
                  summary="pair verification: K-fold accuracy, ROC/AUC, TAR@FAR (streaming)",
                  tags=["face", "verification"],
                  paper="http://vis-www.cs.umass.edu/lfw/lfw.pdf"),
        component("model:dlib-resnet", "zoo_face.dlib_resnet:DlibResNet",
                  summary="dlib's face ResNet (29 conv, 128-d, distance < 0.6: same person)",
                  tags=["face", "recognition", "vision"],
                  paper="http://blog.dlib.net/2017/02/high-quality-face-recognition-with-deep.html"),
        component("metric:identification", "zoo_face.identification:Identification",
                  summary="1:N identification: rank-1 accuracy and TAR@FAR (open set)",
                  tags=["face", "identification"]),
        component("loss:partial-fc", "zoo_face.partial_fc:PartialFC",
                  summary="Partial FC: class centres sharded over ranks, sampled negatives",
                  tags=["face", "margin-loss", "distributed"],
                  paper="https://arxiv.org/abs/2203.15565"),
    ]


_NETS = {  # sha256 of facenet-pytorch's pnet/rnet/onet.pt and of their canonical conversions
    "pnet": ("a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
             "53e6fda5887eea50607893eda5c80dc38f5e94bfbf40072b446fd749f7f17345"),
    "rnet": ("bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
             "b7fcccc998cda10ee62f901146c3eca6041b4b520aa54cd58a22a6e7f88d85b3"),
    "onet": ("165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
             "faf9a07856514f1d021584d12fa01f7f539b6768d4acc05202fc2cb4f48835d1"),
}


def _mtcnn_entry(name: str, task: str, summary: str) -> dict:
    return {
        "name": name, "component": "model:mtcnn", "task": task, "layout": "facenet-pytorch",
        "license": "mit", "paper": "https://arxiv.org/abs/1604.02878",
        "tags": ["face", "detection"], "summary": summary,
        # the published weights, converted from the authors' Caffe models by facenet-pytorch
        "sources": ["pkg:facenet-pytorch/facenet_pytorch/data"],
        "files": {f"{net}.safetensors": converted for net, (_, converted) in _NETS.items()},
        "convert": {f"{net}.safetensors": {"from": f"{net}.pt", "format": "torch",
                                           "sha256": source, "prefix": f"{net}."}
                    for net, (source, _) in _NETS.items()},
    }


@hookimpl
def zoo_catalog():
    return [
        _mtcnn_entry("mtcnn", "face-detection",
                     "MTCNN face detector with its published weights: boxes, scores, landmarks"),
        _mtcnn_entry("face-verify", "face-verification",
                     "detect, align and compare two faces: `zoo run face-verify a.jpg b.jpg "
                     "--model <recognition entry>`"),
    ]


@hookimpl
def zoo_task_runners():
    return {"face-detection": "zoo_face.tasks:detect_faces",
            "face-verification": "zoo_face.tasks:verify_faces",
            "face-identification": "zoo_face.tasks:identify_faces"}


@hookimpl
def zoo_converters():
    return {"dlib-resnet": "zoo_face.dlib_format:read_resnet",
            "dlib-shape-predictor": "zoo_face.dlib_format:read_shape_predictor"}


@hookimpl
def zoo_expected_failures():
    """Contract cases that fail by design (strict: remove an entry once its case passes)."""
    return {"loss:partial-fc::compiles": "Partial FC samples the batch's positive centres "
            "(torch.unique: a data-dependent size), as the method prescribes"}
