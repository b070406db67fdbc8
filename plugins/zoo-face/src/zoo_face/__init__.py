"""zoo-face: Margin-based softmax losses, Partial FC, face alignment, backbones, verification."""
