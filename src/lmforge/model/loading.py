"""Load tokenizers and models. The model class comes from the checkpoint's config (`model.kind`)."""

import logging
import math
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from lmforge.config.groups import ModelGroup
from lmforge.errors import ModelError
from lmforge.hub.resolve import HubArgs, resolve_model_path
from lmforge.model.cpu_matmul import route_linear_layers
from lmforge.model.frozen_linears import float32_buffers, float32_except_linears, stored_float_dtype
from lmforge.model.kind import ModelKind, detect_kind
from lmforge.model.moe import add_router_loss
from lmforge.model.quantization import keep_cpu_kernel_to_packable_layers, quantization_config, quantized_device_map
from lmforge.model.speedups import apply_liger_kernel, attn_implementation, speed_path_notices
from lmforge.model.vocab import add_new_tokens, resize_for_new_tokens

logger = logging.getLogger(__name__)


def model_path(args: ModelGroup) -> str:
    if not args.model_name_or_path:
        raise ModelError("set `model_name_or_path` (a local folder, a registered model name, `builtin:NAME` "
                         "or a hub id)")
    secret = {"modelscope": args.ms_hub_token, "openmind": args.om_hub_token}.get(args.model_hub)
    token = secret.get_secret_value() if secret else None
    return resolve_model_path(args.model_name_or_path, hub=args.model_hub,
                              hub_args=HubArgs(args.model_revision, args.cache_dir, token))


def _hub_kwargs(args: ModelGroup) -> dict[str, Any]:
    token = args.hf_hub_token.get_secret_value() if args.hf_hub_token else None  # None: HF_TOKEN or the login
    return dict(trust_remote_code=args.trust_remote_code, revision=args.model_revision, cache_dir=args.cache_dir,
                token=token)


def _split(args: ModelGroup) -> dict[str, Any]:
    """`split_special_tokens`, passed only when on (processors hand unknown keywords to every sub-processor)."""
    return {"split_special_tokens": True} if args.split_special_tokens else {}


# lmforge renders a conversation as text and tokenizes it: mistral-common's tokenizer (picked when it is installed
# and a `tekken.json` is present) would read `[INST]` / `[AUDIO]` written in text as their bytes, so Mistral
# checkpoints load the transformers tokenizer converted from the same Tekken file.
TRANSFORMERS_FORMAT = {"mistral_format": False}


def load_tokenizer(args: ModelGroup, path: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer, with `add_tokens` / `add_special_tokens` added (the model is resized to match)."""
    path = path or model_path(args)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=args.use_fast_tokenizer, **_split(args),
                                                  **TRANSFORMERS_FORMAT, **_hub_kwargs(args))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the tokenizer of {path}: {err}") from None
    if tokenizer.pad_token is None:  # padding is masked out; any known token will do
        tokenizer.pad_token = tokenizer.eos_token
    add_new_tokens(tokenizer, args)
    return tokenizer


def load_processor(args: ModelGroup, kind: ModelKind, path: str | None = None) -> Any:
    """A multimodal model's processor (its image/video/audio processors and the tokenizer), else None.

    The processor's tokenizer gets the same added tokens and pad token as `load_tokenizer`'s, so one
    encoding serves the template and the plugin."""
    if not kind.is_multimodal:
        return None
    from transformers import AutoProcessor

    path = path or model_path(args)
    try:
        # `use_fast` also reaches the image processor, where transformers deprecates it: pass it only to opt out
        slow = {} if args.use_fast_tokenizer else {"use_fast": False}
        processor = AutoProcessor.from_pretrained(path, **slow, **_split(args), **TRANSFORMERS_FORMAT,
                                                  **_hub_kwargs(args))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the processor of the multimodal model {path}: {err} (a vision/audio model "
                         "needs its preprocessor_config.json / processor_config.json beside the weights)") from None
    except ImportError as err:  # e.g. SmolVLM's processor without num2words
        raise ModelError(f"the processor of {path} needs a package that is not installed: {err} "
                         "(`pip install 'lmforge[multimodal]'` installs the ones lmforge's families need)") from None
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise ModelError(f"the processor of {path} ({type(processor).__name__}) has no tokenizer: "
                         "is this checkpoint multimodal?")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    add_new_tokens(tokenizer, args)
    _set_image_options(processor, args)
    return processor


# LLaMA-Factory's image keys and the image processor attribute each sets (Gemma 3's, InternVL's GotOcr2's).
IMAGE_OPTIONS = {"image_do_pan_and_scan": "do_pan_and_scan", "crop_to_patches": "crop_to_patches"}


def _set_image_options(processor: Any, args: ModelGroup) -> None:
    """Set the image keys that are set on this processor's image processor (this instance only)."""
    image_processor = getattr(processor, "image_processor", None)
    for key, attribute in IMAGE_OPTIONS.items():
        value = getattr(args, key)
        if value is None:
            continue
        if not hasattr(image_processor, attribute):
            raise ModelError(f"`{key}`: the image processor {type(image_processor).__name__} has no `{attribute}` "
                             "(it belongs to Gemma 3's and InternVL's image processors): remove the key")
        setattr(image_processor, attribute, value)


def inference_dtype(args: ModelGroup) -> torch.dtype:
    if args.infer_dtype != "auto":
        return getattr(torch, args.infer_dtype)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_model_config(args: ModelGroup, path: str | None = None) -> Any:
    path = path or model_path(args)
    try:
        return AutoConfig.from_pretrained(path, **_hub_kwargs(args))
    except ValueError as err:
        if not args.trust_remote_code and "trust_remote_code" in str(err):
            raise ModelError(f"{path} ships its own model code (the auto_map of its config.json), which lmforge "
                             "runs only when asked: set `trust_remote_code: true` (for a checkpoint whose code you "
                             "trust)") from None
        raise ModelError(f"cannot read the model config of {path}: {err}") from None
    except OSError as err:
        raise ModelError(f"cannot read the model config of {path}: {err}") from None


def model_kind(args: ModelGroup, path: str | None = None) -> ModelKind:
    """What the configured checkpoint is (reads config.json only)."""
    return detect_kind(load_model_config(args, path), args.model_class)


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _apply_rope_scaling(config: Any, method: str | None, cutoff_len: int) -> None:
    """Stretch RoPE (`rope_scaling: method`) so `cutoff_len` fits when it is longer than the model was
    trained for."""
    if not method:
        return
    text = _text_config(config)
    trained = getattr(text, "max_position_embeddings", None)
    if getattr(text, "rope_parameters", None) is None or not trained:
        raise ModelError(f"`rope_scaling: {method}`: model_type `{config.model_type}` has no "
                         "rotary position embedding to scale; remove the key")
    if cutoff_len <= trained:
        logger.info("rope_scaling not applied: cutoff_len %d fits the model's %d positions", cutoff_len, trained)
        return
    factor = float(math.ceil(cutoff_len / trained))
    params = {**text.rope_parameters, "rope_type": method, "factor": factor}
    if method in ("yarn", "llama3"):
        params["original_max_position_embeddings"] = trained
    if method == "llama3":
        params.setdefault("low_freq_factor", 1.0)
        params.setdefault("high_freq_factor", 4.0)
    text.rope_parameters = params
    text.max_position_embeddings = trained * int(factor)
    logger.info("rope_scaling %s with factor %g: %d -> %d positions", method, factor, trained,
                text.max_position_embeddings)


def load_model(
    args: ModelGroup,
    *,
    dtype: torch.dtype,
    cutoff_len: int,
    path: str | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    seed: int | None = None,
    sharded: bool = False,
    fp32_products: bool = True,
    bf16_linears: bool = False,
) -> Any:
    """The base model, loaded with the auto class its config calls for.

    `cutoff_len`: the longest sequence the run uses (`rope_scaling` stretches positions to fit it).
    `tokenizer`, when it carries `add_tokens` / `add_special_tokens`, resizes the embeddings to match.
    `seed` draws the random weights of `train_from_scratch`. `sharded`: DeepSpeed or FSDP will wrap the
    model, and their hooks gather sharded weights around each layer's own forward, so the CPU matmul
    route (which replaces that forward's matmul) stays off. `fp32_products`: whether the model will multiply
    in float32; a run under autocast computes in half precision, where the route would change nothing but
    would take the place of the training's own half-precision forwards (model/recast_weights.py).
    `bf16_linears` (with `dtype` float32): a checkpoint stored in bf16 keeps its `nn.Linear` weights (not the
    head's or the embeddings') in bf16, read straight from the file, never held in float32
    (model/frozen_linears.py); other checkpoints load in float32.
    """
    path = path or model_path(args)
    config = load_model_config(args, path)
    kind = detect_kind(config, args.model_class)
    _apply_rope_scaling(config, args.rope_scaling, cutoff_len)
    if args.moe_aux_loss_coef is not None:
        add_router_loss(config, args.moe_aux_loss_coef)
    speed_path_notices(args)
    auto_class = getattr(transformers, kind.auto_class)
    quantization = quantization_config(args, dtype)
    bf16_linears = (bf16_linears and dtype == torch.float32 and not args.train_from_scratch and quantization is None
                    and getattr(config, "quantization_config", None) is None
                    and stored_float_dtype(path) == torch.bfloat16)
    kwargs: dict[str, Any] = dict(config=config, dtype=torch.bfloat16 if bf16_linears else dtype, **_hub_kwargs(args))
    attention = attn_implementation(args)
    if attention:
        kwargs["attn_implementation"] = attention
    if quantization is not None:
        kwargs.update(quantization_config=quantization, device_map=quantized_device_map(args),
                      offload_folder=args.offload_folder)
    try:
        if args.train_from_scratch:
            kwargs = {k: v for k, v in kwargs.items() if k in ("dtype", "attn_implementation", "trust_remote_code")}
            torch.manual_seed(seed if seed is not None else 42)
            model = auto_class.from_config(config, **kwargs)
        else:
            model = auto_class.from_pretrained(path, **kwargs)
    except ValueError as err:
        if "Unrecognized configuration class" in str(err):
            raise ModelError(f"{path}: {kind.auto_class} cannot load model_type `{config.model_type}` ({err}); "
                             "set `model_class:` to the auto class that loads it") from None
        raise
    if bf16_linears:
        float32_except_linears(model, float32_buffers(auto_class, config, trust_remote_code=args.trust_remote_code))
    if getattr(model, "is_quantized", False):  # by `quantization_bit`, or a checkpoint saved quantized
        keep_cpu_kernel_to_packable_layers(model)
    if kind.submodule:
        model = getattr(model, kind.submodule)
        # the sub-model came from `path`, not from wherever its config was first saved (what adapters record)
        model.name_or_path = model.config.name_or_path = path
    if tokenizer is not None:
        resize_for_new_tokens(model, tokenizer, args, seed=seed if seed is not None else 42)
    apply_liger_kernel(model, args)
    if not sharded and fp32_products:
        route_linear_layers(model, args.cpu_matmul)
    origin = "random weights (train_from_scratch)" if args.train_from_scratch else path
    logger.info("loaded %s as %s with %s (%s), %s, attention %s", origin, type(model).__name__, kind.auto_class,
                kind.reason, str(dtype).removeprefix("torch."),
                getattr(model.config, "_attn_implementation", None) or "default")
    return model


def load_base_model(args: ModelGroup, *, dtype: torch.dtype, cutoff_len: int, path: str | None = None,
                    sharded: bool = False, fp32_products: bool = True, bf16_linears: bool = False) -> Any:
    """`load_model` for callers without the tokenizer at hand (chat, export, a reference model): the model of
    whatever kind the checkpoint is, its embeddings resized for `add_tokens` / `add_special_tokens` /
    `resize_vocab`; `sharded`, `fp32_products` and `bf16_linears` as for `load_model`."""
    resized = args.add_tokens or args.add_special_tokens or args.resize_vocab
    tokenizer = load_tokenizer(args, path) if resized else None
    return load_model(args, dtype=dtype, cutoff_len=cutoff_len, path=path, tokenizer=tokenizer, sharded=sharded,
                      fp32_products=fp32_products, bf16_linears=bf16_linears)


def load_reward_model(args: ModelGroup, tokenizer: PreTrainedTokenizerBase, *, dtype: torch.dtype,
                      sharded: bool = False, kind: ModelKind | None = None, fp32_products: bool = True,
                      seed: int | None = None) -> Any:
    """The base model with a freshly initialised scalar head (`*ForSequenceClassification`, 1 label), its
    embeddings resized for the tokenizer's new tokens; `sharded`, `fp32_products` and `seed` as for
    `load_model`; `kind`: the checkpoint's kind (a vision/audio-language model gets the reward head of
    `model/reward_head.py`, taking its media inputs)."""
    from lmforge.model.reward_head import reward_model_around

    path = model_path(args)
    try:
        if kind is not None and kind.is_multimodal:
            generation = getattr(transformers, kind.auto_class).from_pretrained(path, dtype=dtype, **_hub_kwargs(args))
            resize_for_new_tokens(generation, tokenizer, args, seed=42 if seed is None else seed)
            model = reward_model_around(generation, kind)
        else:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype,
                                                                                  **_hub_kwargs(args))
            resize_for_new_tokens(model, tokenizer, args, seed=42 if seed is None else seed)
    except ValueError as err:
        raise ModelError(f"{path} has no sequence-classification form for a reward model: {err}") from None
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    model.config.pad_token_id = tokenizer.pad_token_id
    if not sharded and fp32_products:
        route_linear_layers(model, args.cpu_matmul)
    return model


def with_adapters_merged(model: Any, adapters: list[str]) -> Any:
    """`model` with each adapter merged in, in order. peft loads only when there is one: serving a base model
    never imports it."""
    if not adapters:
        return model
    from lmforge.model.lora import merge_adapters

    return merge_adapters(model, adapters)
