"""Library chatter (progress bars, info logs) is not the user's concern during a command."""


def quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
