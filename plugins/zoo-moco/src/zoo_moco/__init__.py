"""zoo-moco: momentum contrast (He et al. 2020) around any zoo backbone.

Components: ``model:moco``, ``loss:infonce`` and ``model:convnet`` (a small conv-BN encoder for
low-resolution images). Importing this package is light; ``zoo.create("model:moco")`` imports
torch.
"""
