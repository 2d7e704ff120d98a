"""Every error lmforge raises on purpose derives from `LmforgeError`.

The CLI prints these as one readable message (no traceback unless `--debug`), so each message
says what was wrong, where (file, row, key) and how to fix it.
"""


class LmforgeError(Exception):
    """Base class of all errors lmforge raises deliberately."""


class ConfigError(LmforgeError):
    """A configuration key, value or combination is invalid."""


class DataError(LmforgeError):
    """A dataset, its registration or one of its rows is invalid."""


class TemplateError(LmforgeError):
    """A chat template is unknown or cannot render the given conversation."""


class ModelError(LmforgeError):
    """A model cannot be found, loaded or adapted as asked."""


class ExportError(LmforgeError):
    """An export or conversion failed or did not verify."""


class RewardError(LmforgeError):
    """A reward function cannot be loaded, or failed or answered wrongly on a row."""


class InstallError(LmforgeError):
    """The environment has a library lmforge needs at a version lmforge cannot run on, or lacks the optional
    package a setting needs (`deepspeed`, `optim: paged_adamw_8bit`, `report_to: wandb`)."""
