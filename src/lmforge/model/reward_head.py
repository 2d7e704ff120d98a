"""The class of a reward model (the base with a scalar value head, `stage: rm`) for any model kind.

transformers has `*ForSequenceClassification` for text models and, of the vision-language families,
for Gemma 3 only. For the others lmforge builds the same thing from transformers' own parts: its
generic sequence-classification head (`GenericForSequenceClassification`: the family's base model
from `AutoModel`, a `score` layer, the value read at the last non-pad token) on the family's
`PreTrainedModel`. The base model takes the media inputs (pixel values, grids, audio features). Its
weights are the generation model's own base module, loaded as transformers loads the generation
checkpoint (its key conversions included); only the LM head is left out and `score` starts fresh, as
for a text reward model.
"""

from functools import cache
from typing import Any

import torch
import transformers
from transformers import PreTrainedModel

from lmforge.errors import ModelError
from lmforge.model.kind import ModelKind


@cache
def reward_model_class(kind: ModelKind) -> type[PreTrainedModel]:
    """The sequence-classification class for a checkpoint of `kind` (one class per model type, made once)."""
    from transformers.modeling_layers import GenericForSequenceClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    if (own := MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(kind.model_type)) is not None:
        return getattr(transformers, own)
    generation = getattr(transformers, kind.architecture, None)
    family = next((base for base in getattr(generation, "__mro__", ())[1:]
                   if issubclass(base, PreTrainedModel) and base is not PreTrainedModel
                   and base.__name__.endswith("PreTrainedModel")), None)
    if family is None:
        raise ModelError(f"{kind.architecture} has no transformers base class lmforge can put a reward head on: "
                         "`stage: rm` needs a model class transformers ships (not remote code)")
    name = kind.architecture.removesuffix("ForConditionalGeneration") + "ForSequenceClassification"
    return type(name, (GenericForSequenceClassification, family), {"__module__": __name__})


def reward_model_around(generation: Any, kind: ModelKind) -> PreTrainedModel:
    """A reward model whose base is `generation`'s base module (the same weights, not a copy) with a fresh
    scalar `score` head."""
    model_class = reward_model_class(kind)
    config = generation.config
    config.num_labels = 1
    with torch.device("meta"):  # the base built here is replaced by the loaded one
        model = model_class(config)
    prefix = model.base_model_prefix
    setattr(model, prefix, getattr(generation, generation.base_model_prefix))
    dtype = next(generation.parameters()).dtype
    model.score = torch.nn.Linear(config.get_text_config().hidden_size, 1, bias=False, dtype=dtype)
    model._init_weights(model.score)
    return model
