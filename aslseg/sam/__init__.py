"""Stage II: the medical SAM MS(.) -- the model, its prompts, the embedding cache and decoder fine-tuning."""
