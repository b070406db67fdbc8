"""zoo-face: face detection (MTCNN), alignment, recognition backbones, margin losses, Partial
FC and verification.

Components are reached through the registry (``zoo.create("loss:arcface", ...)``,
``zoo.load("mtcnn")``); errors are ``zoo.InputError`` (bad input) and ``zoo.ConfigError``
(bad settings). The chain detect → align → embed is :class:`zoo_face.pipeline.FacePipeline`.
"""
