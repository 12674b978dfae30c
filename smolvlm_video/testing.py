"""Build random-weight SmolVLM checkpoints offline, from transformers' own classes.

`tiny` is small enough for the test suite (a few MB, a forward pass in milliseconds). `256M`,
`500M` and `2.2B` have the real architectures' sizes, so compute and memory match the real models
for benchmarks; their weights are random, so their answers are noise.

    python -m smolvlm_video.testing OUT_DIR [--arch tiny|256M|500M|2.2B] [--dtype float32|bfloat16]
    python -m smolvlm_video.testing OUT_DIR --arch whisper      # a speech model, for --speech-model

The checkpoint holds a config, random weights, a byte-level BPE tokenizer trained on a few
sentences with SmolVLM's special tokens and chat template, and the image and video processors, all
saved with save_pretrained, so it loads through `load_model` exactly as a Hub checkpoint does.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

# (vision hidden, layers, heads, mlp, image side, patch), (text hidden, layers, heads, kv heads, mlp), scale
_ARCHS = {
    "tiny": ((32, 2, 2, 64, 64, 16), (64, 2, 4, 2, 128), 2),
    "256M": ((768, 12, 12, 3072, 512, 16), (576, 30, 9, 3, 1536), 4),
    "500M": ((768, 12, 12, 3072, 512, 16), (960, 32, 15, 5, 2560), 4),
    "2.2B": ((1152, 27, 16, 4304, 384, 14), (2048, 24, 32, 32, 8192), 3),
}
REAL_VOCAB_SIZE = 49280  # the SmolVLM2 checkpoints' embedding rows

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<end_of_utterance>",
    "<fake_token_around_image>",
    "<global-img>",
    "<image>",
    "<video>",
    *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
]

# The SmolVLM2 checkpoints' chat template.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
    "{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

_CORPUS = [
    "User: Describe this video in detail. Assistant: A person walks a dog along a sunny beach.",
    "You are provided the following series of sixty-four frames from a 0:03:30 [H:MM:SS] video.",
    "Frame from 00:01: a red car turns left at the crossing while people wait.",
    "What happens in this clip? The cat jumps onto the table and knocks over a cup of tea.",
    "Question answering about images, videos and text: colors, counts, actions, places, time.",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,:;'\"-()[]",
]

# Whisper: (hidden, encoder layers, decoder layers, heads, mlp, mel bins, embedding rows); 0 rows: the
# tokenizer's own. `whisper` is for the tests; the others are openai/whisper-small's and large-v3-turbo's.
_WHISPER_ARCHS = {
    "whisper": (32, 1, 1, 2, 64, 80, 0),
    "whisper-small": (768, 12, 12, 12, 3072, 80, 51865),
    "whisper-turbo": (1280, 32, 4, 20, 5120, 128, 51866),
}


@dataclass(frozen=True)
class Arch:
    """The shape of one checkpoint."""

    name: str
    frame_side: int
    tokens_per_frame: int


def arch(name: str) -> Arch:
    """Frame side and image tokens per frame of an architecture name."""
    (_, _, _, _, side, patch), _, scale = _ARCHS[name]
    return Arch(name, side, (side // patch) ** 2 // scale**2)


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(_CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
        chat_template=CHAT_TEMPLATE,
        model_max_length=16384,
    )


def _processor(tokenizer, name: str):
    from transformers import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    shape = arch(name)
    side = {"longest_edge": shape.frame_side}
    common = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "max_image_size": side, "resample": 1}
    image_processor = SmolVLMImageProcessor(size={"longest_edge": 4 * shape.frame_side}, **common)
    sampling = {"fps": 1, "max_frames": 64, "video_size": side}
    video_processor = SmolVLMVideoProcessor(video_sampling=sampling, size=side, **common)
    return SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_len=shape.tokens_per_frame,
        chat_template=CHAT_TEMPLATE,
    )


def _config(tokenizer, name: str):
    from transformers import LlamaConfig, SmolVLMConfig, SmolVLMVisionConfig

    (v_hidden, v_layers, v_heads, v_mlp, side, patch), (hidden, layers, heads, kv, mlp), scale = _ARCHS[name]
    vision = SmolVLMVisionConfig(
        hidden_size=v_hidden,
        num_hidden_layers=v_layers,
        num_attention_heads=v_heads,
        intermediate_size=v_mlp,
        image_size=side,
        patch_size=patch,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = LlamaConfig(
        vocab_size=len(tokenizer) if name == "tiny" else REAL_VOCAB_SIZE,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=mlp,
        max_position_embeddings=16384,
        rope_theta=273768.0,
        pad_token_id=ids("<|endoftext|>"),
        bos_token_id=ids("<|im_start|>"),
        eos_token_id=ids("<end_of_utterance>"),
    )
    return SmolVLMConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        scale_factor=scale,
        image_token_id=ids("<image>"),
        tie_word_embeddings=False,
        pad_token_id=ids("<|endoftext|>"),
    )


def build_checkpoint(
    out_dir: str | os.PathLike[str], name: str = "tiny", seed: int = 0, dtype: str = "float32"
) -> Path:
    """Write a random-weight SmolVLM checkpoint of architecture `name` to out_dir and return its path.

    Its weights are saved in `dtype`: bfloat16 is how the SmolVLM2 checkpoints are stored on the Hub, and
    halves a big shape's files; the test suite's tiny checkpoint stays in float32.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    if name not in _ARCHS:
        raise ValueError(f"Unknown architecture {name!r}; choose one of {', '.join(_ARCHS)}.")
    out = Path(out_dir)
    tokenizer = _tokenizer()
    config = _config(tokenizer, name)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id, pad_token_id=config.text_config.pad_token_id
    )
    model.save_pretrained(out)
    _processor(tokenizer, name).save_pretrained(out)
    return out


def _whisper_tokenizer():
    """A byte-level tokenizer (no merges) with Whisper's special tokens, then its 1501 timestamp tokens."""
    from transformers import WhisperTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    vocab = {character: index for index, character in enumerate(bytes_to_unicode().values())}
    tasks = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>"]
    specials = ["<|startoftranscript|>", *[f"<|{code}|>" for code in LANGUAGES], *tasks, "<|notimestamps|>"]
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], additional_special_tokens=specials)
    tokenizer.add_tokens([f"<|{step * 0.02:.2f}|>" for step in range(1501)])
    return tokenizer


def build_whisper_checkpoint(out_dir: str | os.PathLike[str], name: str = "whisper", seed: int = 0) -> Path:
    """Write a random-weight Whisper checkpoint of shape `name` (`_WHISPER_ARCHS`) to out_dir: config,
    weights, a generation config with its language, task and timestamp tokens, and a processor."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    hidden, encoders, decoders, heads, mlp, mels, rows = _WHISPER_ARCHS[name]
    tokenizer = _whisper_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    end, start = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    extra = list(range(len(tokenizer), rows))  # embedding rows past the tokenizer's: never generated
    config = WhisperConfig(
        vocab_size=rows or len(tokenizer), d_model=hidden, encoder_layers=encoders, decoder_layers=decoders,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=mlp,
        decoder_ffn_dim=mlp, num_mel_bins=mels, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=start, pad_token_id=end, bos_token_id=end, eos_token_id=end,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, bos_token_id=end, eos_token_id=end, pad_token_id=end,
        begin_suppress_tokens=[end], suppress_tokens=extra, max_length=448, is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
    )  # fmt: skip
    out = Path(out_dir)
    model.save_pretrained(out)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=mels), tokenizer).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write the checkpoint to")
    parser.add_argument("--arch", choices=[*_ARCHS, *_WHISPER_ARCHS], default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="a SmolVLM checkpoint's weights' type",
    )
    args = parser.parse_args(argv)
    if args.arch in _WHISPER_ARCHS:
        build_whisper_checkpoint(args.out_dir, args.arch, args.seed)
    else:
        build_checkpoint(args.out_dir, args.arch, args.seed, args.dtype)


if __name__ == "__main__":
    main()
