"""Runnable examples: `python -m tinypeft.examples.tiny_gpt2 pretrain|finetune`."""
