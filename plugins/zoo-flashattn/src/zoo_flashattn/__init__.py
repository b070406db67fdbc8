"""zoo-flashattn: FlashAttention forward and backward in Triton, with torch and SDPA backends."""
