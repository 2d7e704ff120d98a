"""Where models come from: builtin models, local folders, hub ids."""
