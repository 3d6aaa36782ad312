"""Fix writing: the plan, local rewrites, multi-step recipes, concurrent index builds and splits."""
