"""zoo-checkpoint: Gradient checkpointing policies for zoo models, measured."""
