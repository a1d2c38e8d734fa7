"""Training and evaluation of HyperSeg on the procedural world: batches (dataset), losses, the
training loop (train), metrics and the evaluation report (evaluate)."""
