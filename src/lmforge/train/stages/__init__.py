"""One module per training stage. Each builds the stage's trainer; `train.runner` does the rest."""
