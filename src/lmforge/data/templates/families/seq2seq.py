"""Encoder-decoder models (T5, BART): the prompt is the encoder's input, the answer the decoder's target.

There is no chat markup: the encoder reads the conversation as plain text, one turn per line, and the
seq2seq processor appends eos to the answer (the decoder learns to stop there). `efficient_eos` makes
a decoder-only model trained with this template learn to stop at eos too.
"""

from lmforge.data.templates.registry import register_template

register_template(
    "seq2seq",
    format_system="{{content}}\n",
    format_user="{{content}}\n",
    format_assistant="{{content}}",
    assistant_suffix="\n",
    efficient_eos=True,
    description="Plain prompt -> answer for encoder-decoder models (T5, BART, Flan-T5).",
)
