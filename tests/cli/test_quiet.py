"""What `hide_unactionable_output` hides: the libraries' notices about each other, never a real warning."""

import warnings

from lmforge.cli.quiet import hide_unactionable_output

SHOWN = [("the learning rate is zero", UserWarning), ("`some_other_call` is deprecated", FutureWarning)]
HIDDEN = [  # trl's `disable_gradient_checkpointing` (GRPO rollouts, DPO's reference pass) calls transformers' old names
    ("`gradient_checkpointing_disable` is deprecated and will be removed in v6. Use `activation_checkpointing_disable` "
     "instead.", FutureWarning),
    ("`gradient_checkpointing_enable` is deprecated and will be removed in v6.", FutureWarning),
    ("`past_key_values` is deprecated", FutureWarning),
]


def test_library_deprecations_are_hidden_and_real_warnings_stay(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "0")  # set by the call where stderr is not a terminal: restored after
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hide_unactionable_output(verbose=False)
        for message, category in HIDDEN + SHOWN:
            warnings.warn(message, category, stacklevel=1)
    assert [str(warning.message) for warning in caught] == [message for message, _ in SHOWN]
