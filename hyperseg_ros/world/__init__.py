"""The procedural world the embedded default model is trained and measured on
(../shared/design/synthetic-world.md): scenes, clips, operator commands, vocabulary, seed splits."""
