"""The public API: ``s2s.load(folder).translate(text, ...)`` -> a JSON-serialisable dict.

Settings are validated here, where they enter, and nowhere else. Input rules:
- a text is split into sentences by a segmenter for the model's source language (sentencex),
  every sentence is translated (all of them in one batch) and the outputs are joined; the result
  keeps one entry per sentence with its pieces, hypotheses, attention and trace;
- text with no visible character (empty, whitespace, zero-width or other invisible format
  characters), or whose sentences all encode to no piece, and text over ``MAX_INPUT_CHARS`` characters or
  ``MAX_SENTENCES`` sentences, give a result with no sentences and a ``message``;
- a sentence longer than the model's ``max_source_len`` pieces is truncated to it, with a line
  in ``warnings`` that names the sentence;
- any Unicode encodes (sentencepiece byte fallback); control characters are normalised away.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import unicodedata
from pathlib import Path
from typing import Any, Iterator

import sentencex
import torch

from . import search
from .checkpoint import WEIGHTS_FILE, load_model, read_metrics
from .config import MODEL_SIZE_LIMITS
from .data import pad
from .familiarity import unfamiliar_notes
from .heads import HeadSettings, parse_heads
from .model import EncoderDecoder, evaluating
from .neighbour_index import LazyIndex, file_digest
from .neighbours import DEFAULT_NEIGHBOURS, check_query, find_neighbours
from .precision import DEFAULT_WEIGHTS, require_gradients, with_weights
from .saliency import DEFAULT_MEMORY_BUDGET, DEFAULT_STEPS, check_work, rank_correlation, source_saliency
from .search import BeamStep, Hypothesis
from .tokenizer import BOS_ID, EOS_ID, EOS_PIECE, Tokenizer, merge_pieces, word_spans

STRATEGIES = ("greedy", "beam", "sample")
MAX_BEAM_SIZE = 64
MAX_SAMPLES = 64
MAX_INPUT_CHARS = 5000
MAX_SENTENCES = 50
MAX_TARGET_LEN = 256  # hard cap on output tokens, whatever the ratio says
WORD_WINDOW = 4  # pieces before a candidate that decide whether it starts a word (trace_dicts)
MAX_ALTERNATIVES = 20
MAX_HEADS_OFF_CHARS = 2000
PYTHON_FLOAT_BYTES = 32  # a float in a result's lists: the object and its pointer (decode_bytes)


@functools.lru_cache(maxsize=8192)
def word_count(pieces: tuple[str, ...]) -> int:
    """How many words ``merge_pieces`` makes of a few pieces. Beam traces ask this of the same
    short windows again and again (every candidate of a prefix, the same pieces in every
    sentence), so the answers are kept: 8,192 windows of at most WORD_WINDOW + 1 pieces, 2-5 MB
    when full (tracemalloc, en-fr's pieces)."""
    return len(merge_pieces(pieces))


# The range of every numeric decoding setting: (lowest, highest, whole numbers only). Read by
# ``DecodeSettings.validate`` and by the REST API's schema (``s2s.schema.settings_fields``), so the
# schema states exactly what the server enforces. nbest is at most beam_size for beam search.
SETTING_RANGES: dict[str, tuple[float, float, bool]] = {
    "beam_size": (1, MAX_BEAM_SIZE, True), "nbest": (1, MAX_SAMPLES, True), "alpha": (0.0, 5.0, False),
    "coverage_penalty": (0.0, 5.0, False), "min_length_ratio": (0.0, 2.0, False),
    "max_length_ratio": (0.1, 10.0, False), "max_length_extra": (0, MAX_TARGET_LEN, True),
    "no_repeat_ngram": (0, 10, True), "alternatives": (0, MAX_ALTERNATIVES, True),
    "temperature": (1e-3, 100.0, False), "top_k": (0, 1_000_000, True), "top_p": (1e-6, 1.0, False),
    "seed": (0, 2**63 - 1, True), "steer_layer": (-1, MODEL_SIZE_LIMITS["decoder_layers"] - 1, True),
    "steer_head": (-1, MODEL_SIZE_LIMITS["attention_heads"] - 1, True),
}


@dataclasses.dataclass(frozen=True)
class DecodeSettings:
    """How to decode: the one definition of every decoding setting, used by the library, the
    command line (flags generated from the fields), the app (controls and defaults taken from
    the fields) and the tests. ``nbest`` is the number of hypotheses returned (samples, for
    sampling). Immutable, so a validated value stays valid."""

    strategy: str = "beam"
    beam_size: int = 5
    nbest: int = 1
    alpha: float = 0.6  # length penalty; 0 = raw log-probability
    coverage_penalty: float = 0.1  # GNMT coverage penalty beta; 0 = off (needs attention)
    min_length_ratio: float = 0.0  # output has at least ratio * source pieces before </s>; 0 = off
    max_length_ratio: float = 2.0  # output may have ratio * source pieces + extra tokens
    max_length_extra: int = 10
    no_repeat_ngram: int = 0  # no n-gram of this size twice in an output (every strategy; forced pieces exempt); 0 = off
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    seed: int | None = None  # sampling seed; None = a fresh random draw
    prefix: str = ""  # forced start of the output (of every sentence), taken as whole pieces
    split_sentences: bool = True  # translate each sentence of the text on its own
    alternatives: int = 5  # the model's top pieces recorded at each output position; 0 = none
    heads_off: str = ""  # Transformer heads switched off, "KIND.LAYER.HEAD, ..." (KIND: encoder, decoder, cross)
    steer_layer: int = -1  # Transformer: the cross-attention layer a steering edit replaces (-1 = the last)
    steer_head: int = -1  # Transformer: the head of that layer it replaces (-1 = every head)

    def validate(self) -> "DecodeSettings":
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name, (low, high, integer) in SETTING_RANGES.items():
            value = getattr(self, name)
            if name == "seed" and value is None:
                continue
            if name == "nbest" and self.strategy == "beam":
                high = self.beam_size  # the beam holds the n-best
            kind = int if integer else (int, float)
            if isinstance(value, bool) or not isinstance(value, kind) or not (low <= value <= high):
                raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} "
                                 f"in [{low}, {high}], got {value!r}")
        if not isinstance(self.prefix, str) or len(self.prefix) > MAX_INPUT_CHARS:
            raise ValueError(f"prefix must be a string of at most {MAX_INPUT_CHARS} characters")
        if not isinstance(self.split_sentences, bool):
            raise ValueError(f"split_sentences must be true or false, got {self.split_sentences!r}")
        if not isinstance(self.heads_off, str) or len(self.heads_off) > MAX_HEADS_OFF_CHARS:
            raise ValueError(f"heads_off must be a string of at most {MAX_HEADS_OFF_CHARS} characters")
        parse_heads(self.heads_off)
        return self

    @property
    def heads(self) -> HeadSettings:
        """The head controls these settings ask for (checked against a model by ``HeadSettings.check``)."""
        return HeadSettings(parse_heads(self.heads_off), self.steer_layer, self.steer_head)


@dataclasses.dataclass(frozen=True)
class RequestCost:
    """What a translation request may take, known before it runs (``Translator.request_cost``):
    ``sentences`` decoded, ``work`` (decoder rows x steps, summed over them: the time it may take)
    and ``memory`` (bytes it may hold at most, its results included)."""

    sentences: int = 0
    work: int = 0
    memory: int = 0

    def __add__(self, other: "RequestCost") -> "RequestCost":
        return RequestCost(self.sentences + other.sentences, self.work + other.work, self.memory + other.memory)


EMPTY_MESSAGE = "Empty input: type a sentence to translate."


def looks_like_text(text: str) -> bool:
    """Whether ``text`` has a visible character: not only whitespace and invisible format
    characters (zero-width space and joiner, byte-order mark, direction marks: category Cf)."""
    return any(not character.isspace() and unicodedata.category(character) != "Cf" for character in text)


def without_control_characters(text: str) -> tuple[str, str | None]:
    """``text`` without control and invisible format characters (NUL, escape, zero-width...), and
    a note saying so when any were removed (None otherwise): for a word a person types."""
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf") or c in " \t")
    if kept == text:
        return text, None
    return kept, f"{len(text) - len(kept)} control or invisible character(s) were removed from the typed word."


def source_language(name: str, metrics: dict[str, Any]) -> str:
    """A model's source language code: its card's ``source_language``, else the part of its
    folder name before the first "-" (``en-fr`` -> ``en``). sentencex falls back to generic
    rules for a code it does not know, and the explorer to English examples."""
    return str(metrics.get("source_language") or name.split("-")[0])


DEFAULT_COVERAGE_PENALTY = DecodeSettings().coverage_penalty  # said nothing about when left at the default


def sampling_generator(settings: DecodeSettings) -> torch.Generator:
    """The random generator sampling draws from: seeded by ``settings.seed``, else freshly; never
    torch's global generator, so translating does not disturb training or other callers."""
    generator = torch.Generator()
    if settings.seed is None:
        generator.seed()
    else:
        generator.manual_seed(settings.seed)
    return generator


def make_settings(settings: DecodeSettings | None = None, **overrides: Any) -> DecodeSettings:
    """Settings from defaults (or ``settings``) with keyword overrides; unknown names are errors."""
    known = {field.name for field in dataclasses.fields(DecodeSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown decoding setting(s) {unknown}; known: {sorted(known)}")
    return dataclasses.replace(settings or DecodeSettings(), **overrides).validate()


class Translator:
    """A model with its tokenizer: translates text and explains how. Every model call runs in
    eval mode and leaves the model's mode as it found it (training validates with its own model)."""

    def __init__(self, model: EncoderDecoder, tokenizer: Tokenizer, name: str = "model",
                 metrics: dict[str, Any] | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 folder: Path | None = None, weights: str = DEFAULT_WEIGHTS, weights_sha256: str | None = None) -> None:
        self.model = with_weights(model, weights)  # changed in place to hold them so (s2s.precision)
        # The digest of the weights file these weights were read from (None: not from a folder):
        # what caches and the neighbour index's staleness check are keyed on.
        self.weights_sha256 = weights_sha256
        self.neighbour_index = LazyIndex(folder, weights_sha256)  # the folder's index/, loaded on first use
        self.memory_budget = memory_budget  # bytes one search may hold (see decode_bytes)
        self.tokenizer = tokenizer
        self.name = name
        self.metrics = metrics or {}
        self.weights = weights  # how the model holds them (s2s.precision): saliency needs gradients

    @classmethod
    def load(cls, folder: str | Path, weights: str = DEFAULT_WEIGHTS,
             memory_budget: int = DEFAULT_MEMORY_BUDGET) -> "Translator":
        """Load a model folder; ``weights`` is how it holds them (``s2s.precision``: fp32,
        bf16-output or int8; the reduced ones are faster on a CPU and may change outputs slightly);
        ``memory_budget``: bytes one search may hold."""
        # The digest first: a file replaced between the two is a newer version, which the
        # catalog (keyed on the file's modification time read before both) loads again.
        digest = file_digest(Path(folder) / WEIGHTS_FILE) if (Path(folder) / WEIGHTS_FILE).is_file() else None
        model, tokenizer = load_model(Path(folder))
        return cls(model, tokenizer, name=Path(folder).name, metrics=read_metrics(Path(folder)),
                   memory_budget=memory_budget, folder=Path(folder), weights=weights, weights_sha256=digest)

    @property
    def has_attention(self) -> bool:
        return self.model.has_attention

    def translate(self, text: str, settings: DecodeSettings | None = None, **overrides: Any) -> dict[str, Any]:
        """Translate one text; see ``translate_batch`` for the result."""
        return self.translate_batch([text], settings, **overrides)[0]

    def split(self, text: str) -> list[str]:
        """The sentences of ``text`` (stripped, empty ones dropped)."""
        language = source_language(self.name, self.metrics)
        return [sentence.strip() for sentence in sentencex.segment(language, text) if sentence.strip()]

    def translate_batch(self, texts: list[str], settings: DecodeSettings | None = None,
                        batch_size: int = 64, details: bool = True, **overrides: Any) -> list[dict[str, Any]]:
        """Translate many texts; all their sentences are decoded together, batched by length,
        and the results come back in input order. ``details=False`` computes only what a text
        output needs: no alternatives (the settings' ``alternatives`` becomes 0), ``trace`` None,
        a Transformer's ``encoder_attention`` and ``decoder_attention`` None (evaluation and the
        command line's text output; the self-attention pass alone cost 9% of an evaluation's time
        on de-en-transformer), and no attention at all where the coverage penalty cannot change
        an output (greedy, or beta 0; the search decides, see ``s2s.search``): then every
        ``attention`` and ``head_attention`` is None and ``normalized_score`` has no coverage term
        (keeping it cost 7% of de-en-transformer's greedy time one sentence at a time). The outputs
        are the same either way.

        Each result: ``source``, ``text`` (the best output of each sentence, joined),
        ``sentences`` (each with ``source``, ``source_pieces`` (</s> included), ``source_words``, ``hypotheses``
        and ``trace``; a Transformer's also ``encoder_attention`` and ``decoder_attention``, see
        ``_add_self_attention``), ``settings``, ``warnings``, ``message``, ``time_ms``. A hypothesis has
        ``text``, ``pieces``, ``words`` (each ``{text, pieces}``: the piece indices of each word,
        by ``tokenizer.merge_pieces``, the one rule every view groups by), ``ids``, ``token_logprobs``, ``score``, ``normalized_score``,
        ``attention`` [len(pieces)][len(source_pieces)] or None (a Transformer's: the average over
        heads of its last layer), ``head_attention`` (a Transformer's cross-attention of every layer
        and head, [layers][heads][len(pieces)][len(source_pieces)]; None for the RNN), ``finished``, ``parent_slots``
        (beam search's back-pointer of each piece: the beam slot its prefix held after the previous
        step, see ``search.Hypothesis``; empty for other strategies), ``alternatives`` (per position, the model's top pieces as ``{id, piece, logprob}``) and
        ``forced`` (how many leading pieces were forced: ``redecode``'s prefix, else 0);
        ``trace`` is the beam search's (None for other strategies).
        """
        settings = make_settings(settings, **overrides)
        if not details:
            settings = dataclasses.replace(settings, alternatives=0)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        started = time.perf_counter()
        results = [self._prepare(text, settings) for text in texts]
        sentences = [sentence for result in results for sentence in result["sentences"]]
        prefix_ids = self.tokenizer.encode(settings.prefix) if settings.prefix.strip() else []
        generator = sampling_generator(settings)
        order = sorted(sentences, key=lambda s: len(s["ids"]))
        for chunk in self._chunks(order, settings, len(prefix_ids), batch_size):
            outputs = self._decode([s["ids"] for s in chunk], prefix_ids, settings, generator,
                                   with_attention=details)
            for sentence, (hypotheses, trace) in zip(chunk, outputs):
                sentence["hypotheses"] = [self.hypothesis_dict(h, forced=len(prefix_ids)) for h in hypotheses]
                sentence["trace"] = self.trace_dicts(trace) if details else None
            if details:
                self._add_self_attention(chunk, settings)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        for result in results:
            for sentence in result["sentences"]:
                sentence.pop("ids")
            result["text"] = " ".join(s["hypotheses"][0]["text"] for s in result["sentences"])
            result["time_ms"] = elapsed_ms
        return results

    @torch.inference_mode()
    def _add_self_attention(self, sentences: list[dict[str, Any]], settings: DecodeSettings) -> None:
        """A Transformer's self-attention for the shown (best) hypothesis of each sentence, from one
        teacher-forced pass: ``encoder_attention`` [layers][heads][S][S] over ``source_pieces`` and
        ``decoder_attention`` [layers][heads][T][T] over the best hypothesis's pieces (row t: what
        the decoder read, <s> and the pieces before t, while choosing piece t). An RNN's stay None."""
        if self.model.config.arch != "transformer":
            return
        source = pad([s["ids"] + [EOS_ID] for s in sentences])
        targets = [s["hypotheses"][0]["ids"] for s in sentences]
        target_in = pad([[BOS_ID] + t[:-1] for t in targets])
        with evaluating(self.model):
            encoder, decoder = self.model.self_attention(source, target_in, settings.heads)
        for row, (sentence, target) in enumerate(zip(sentences, targets)):
            s, t = len(sentence["ids"]) + 1, len(target)
            sentence["encoder_attention"] = encoder[row, :, :, :s, :s].tolist()
            sentence["decoder_attention"] = decoder[row, :, :, :t, :t].tolist()

    def decoder_rows(self, settings: DecodeSettings) -> int:
        """Decoder rows one sentence takes: its beams, its samples, or one."""
        return {"greedy": 1, "beam": settings.beam_size, "sample": settings.nbest}[settings.strategy]

    @staticmethod
    def max_steps(settings: DecodeSettings, source_length: int, prefix_length: int = 0) -> int:
        """The most decoder steps of a sentence of ``source_length`` pieces (</s> included): the
        longest output ``_decode`` allows."""
        return max(prefix_length + 2, min(MAX_TARGET_LEN, int(source_length * settings.max_length_ratio
                                                               + settings.max_length_extra)))

    def decode_bytes(self, settings: DecodeSettings, sentences: int, source_length: int, prefix_length: int = 0) -> int:
        """An upper bound on the memory one search holds for ``sentences`` sentences of at most
        ``source_length`` pieces (</s> included), in bytes, known before it starts: per decoder row
        (beams or samples of a sentence) the step's log-probabilities over the vocabulary and their
        constrained and ranked copies, the encoder's memory (and a Transformer's key/value cache), and
        the histories a hypothesis carries at the longest output allowed (``search.PathHistory``: the
        attention, every head's for a Transformer, and the top alternatives, three times over: as
        stored, concatenated when hypotheses are built from them, and gathered for those; each step's
        back-pointer, id, log-probability and slot as Python numbers); and the result's attention as
        Python lists (``PYTHON_FLOAT_BYTES`` a number: a Transformer's every head, and its self-attention)."""
        rows = sentences * self.decoder_rows(settings)
        steps = self.max_steps(settings, source_length, prefix_length)
        config = self.model.config
        per_step = config.vocab_size * 4
        self_attention = 0
        if config.arch == "transformer":  # every head's attention; cross keys and values, the growing cache
            attended = source_length * config.decoder_layers * config.attention_heads
            encoder = (3 * source_length + 2 * steps) * config.embedding_dim * config.decoder_layers
            self_attention = sentences * config.attention_heads * (
                config.encoder_layers * source_length ** 2 + config.decoder_layers * steps ** 2)
        else:
            attended = source_length
            encoder = source_length * (2 * config.encoder_hidden + config.decoder_hidden)
        history = steps * (attended + 2 * settings.alternatives) * 3
        paths = steps * 4 * PYTHON_FLOAT_BYTES
        listed = (rows * steps * attended + self_attention) * PYTHON_FLOAT_BYTES
        return rows * ((per_step + history + encoder) * 4 + paths) + listed

    def request_cost(self, texts: list[str], settings: DecodeSettings) -> "RequestCost":
        """What translating ``texts`` may take, known before any decoding (the texts are split and
        tokenised, nothing more): their sentences, the decoder rows x steps of each summed
        (``work``), and the sum of each sentence's ``decode_bytes`` (``memory``), an upper bound
        on the whole request, every result it piles up included. A text refused with a
        ``message`` costs nothing."""
        prefix_length = len(self.tokenizer.encode(settings.prefix)) if settings.prefix.strip() else 0
        rows, sentences, work, memory = self.decoder_rows(settings), 0, 0, 0
        for text in texts:
            for sentence in self._prepare(text, settings)["sentences"]:
                length = len(sentence["ids"]) + 1
                sentences += 1
                work += rows * self.max_steps(settings, length, prefix_length)
                memory += self.decode_bytes(settings, 1, length, prefix_length)
        return RequestCost(sentences, work, memory)

    def check_budget(self, settings: DecodeSettings, source_length: int, prefix_length: int = 0) -> None:
        """Refuse, before any decoding, one sentence whose search would not fit ``memory_budget``."""
        needed = self.decode_bytes(settings, 1, source_length, prefix_length)
        if needed > self.memory_budget:
            raise ValueError(f"Decoding a {source_length - 1}-piece sentence with these settings needs about "
                             f"{needed / 2**20:,.0f} MB, over this server's budget of {self.memory_budget / 2**20:,.0f} "
                             "MB: lower the beam size (or samples) or the maximum length, or shorten the sentence.")

    def _chunks(self, order: list[dict[str, Any]], settings: DecodeSettings, prefix_length: int,
                batch_size: int) -> Iterator[list[dict[str, Any]]]:
        """Sentences (sorted by length) in batches of at most ``batch_size`` whose ``decode_bytes``
        fits ``memory_budget``; a sentence that does not fit alone is refused before any decoding."""
        chunk: list[dict[str, Any]] = []
        for sentence in order:
            length = len(sentence["ids"]) + 1
            self.check_budget(settings, length, prefix_length)
            if chunk and (len(chunk) == batch_size or
                          self.decode_bytes(settings, len(chunk) + 1, length, prefix_length) > self.memory_budget):
                yield chunk
                chunk = []
            chunk.append(sentence)
        if chunk:
            yield chunk

    def redecode(self, source: str, prefix_ids: list[int], settings: DecodeSettings | None = None,
                 steering: dict[int, list[float]] | None = None, **overrides: Any) -> dict[str, Any]:
        """What if: decode one sentence again with its output forced to begin with ``prefix_ids``
        (what a person picked: a hypothesis's first pieces and then an alternative or a typed word,
        see ``edited_prefix``) and, at the output steps in ``steering``, the decoder looking where
        the person says (step -> weights over ``source_pieces``, see ``steering_tensor``); the rest
        is decoded under ``settings``. Returns the sentence's result (``source``, ``source_pieces``,
        ``hypotheses`` with ``forced`` set, ``trace``, ``prefix``, ``steered`` steps)."""
        settings = make_settings(settings, **overrides, split_sentences=False, prefix="")
        if not isinstance(source, str) or not source.strip():
            raise ValueError("source must be a non-empty sentence")
        if not isinstance(prefix_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                       for i in prefix_ids):
            raise ValueError("prefix_ids must be a list of piece ids")
        if len(prefix_ids) >= MAX_TARGET_LEN:
            raise ValueError(f"the forced prefix has {len(prefix_ids)} pieces; at most {MAX_TARGET_LEN - 1}")
        bad = [i for i in prefix_ids if not self.is_output_piece(i)]
        if bad:
            raise ValueError(f"piece id {bad[0]} cannot be forced: it is not an output piece of this model")
        result = self._prepare(source, settings)
        if result["message"]:
            raise ValueError(result["message"])
        (sentence,) = result["sentences"]
        self.check_budget(settings, len(sentence["ids"]) + 1, len(prefix_ids))
        steered = self.steering_tensor(steering or {}, len(sentence["source_pieces"]))
        ((hypotheses, trace),) = self._decode([sentence["ids"]], prefix_ids, settings,
                                              sampling_generator(settings), steered)
        sentence["hypotheses"] = [self.hypothesis_dict(h, forced=len(prefix_ids)) for h in hypotheses]
        sentence["trace"] = self.trace_dicts(trace)
        self._add_self_attention([sentence], settings)
        sentence.pop("ids")
        sentence["prefix"] = self.tokenizer.decode(prefix_ids)
        sentence["steered"] = sorted(steering or {})
        return sentence

    def source_pieces(self, source: str) -> list[str]:
        """The pieces the model reads for ``source`` taken as one sentence (</s> included; cut to
        the model's ``max_source_len``): what steering weights are given over."""
        result = self._prepare(source, make_settings(split_sentences=False))
        if result["message"]:
            raise ValueError(result["message"])
        return result["sentences"][0]["source_pieces"]

    def check_output(self, ids: Any) -> None:
        """Refuse ``ids`` that are not an output of this model: piece ids it can output (</s>
        included), at most MAX_TARGET_LEN of them."""
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) and (self.is_output_piece(i) or i == EOS_ID) for i in ids):
            raise ValueError("ids must be the output's piece ids (pieces this model can output, </s> included)")
        if len(ids) > MAX_TARGET_LEN:
            raise ValueError(f"the output has {len(ids)} pieces; at most {MAX_TARGET_LEN}")

    def is_output_piece(self, piece_id: int) -> bool:
        """Whether a person may put ``piece_id`` in an output: a piece of this vocabulary that
        search can output, </s> aside (it ends the output by itself)."""
        return 0 <= piece_id < self.tokenizer.vocab_size and piece_id not in search.NEVER_OUTPUT and piece_id != EOS_ID

    def steering_tensor(self, steering: dict[int, list[float]], source_length: int) -> torch.Tensor | None:
        """Validated attention steering as [1, last step + 1, source_length], NaN at steps left to
        the model. Each step's weights cover the source pieces (</s> included), are finite and
        non-negative with a positive sum, and are renormalised to sum to 1."""
        if not steering:
            return None
        if not isinstance(steering, dict):
            raise ValueError("steering must map output steps to weights over the source pieces")
        if not self.has_attention:
            raise ValueError("This model has no attention (attention 'none'): there is nothing to steer.")
        if not all(isinstance(step, int) and not isinstance(step, bool) and 0 <= step < MAX_TARGET_LEN
                   for step in steering):
            raise ValueError(f"steering steps must be output positions in [0, {MAX_TARGET_LEN - 1}]")
        tensor = torch.full((1, max(steering) + 1, source_length), float("nan"))
        for step, weights in steering.items():
            if not isinstance(weights, (list, tuple)) or len(weights) != source_length or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
                raise ValueError(f"step {step}: give {source_length} weights, one per source piece "
                                 "(</s> included)")
            row = torch.tensor([float(w) for w in weights])
            if not bool(row.isfinite().all()) or bool((row < 0).any()) or float(row.sum()) <= 0:
                raise ValueError(f"step {step}: weights must be finite, non-negative and not all zero")
            total = row.sum()
            tensor[0, step] = row if abs(float(total) - 1.0) <= 1e-6 else row / total
        return tensor

    def score(self, source: str, target: str | list[int], settings: DecodeSettings | None = None,
              **overrides: Any) -> dict[str, Any]:
        """Is this translation one the model would produce? Force-decodes ``target`` (a person's
        translation of the sentence ``source``, as text or piece ids without </s>) and returns the
        sentence's result shape with it as the one hypothesis: per-piece log-probabilities,
        attention, the model's alternatives at each position, and its score normalised as search
        normalises (``settings``' alpha and coverage penalty) so it compares with the outputs."""
        settings = make_settings(settings, **overrides, split_sentences=False, prefix="")
        if isinstance(target, str):
            if not target.strip():
                raise ValueError("Type a translation to score.")
            if len(target) > MAX_INPUT_CHARS:
                raise ValueError(f"The translation has {len(target):,} characters; at most {MAX_INPUT_CHARS:,} "
                                 "are scored.")
            target_ids = self.tokenizer.encode(target.strip())
        elif isinstance(target, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in target):
            target_ids = [i for i in target if i != EOS_ID] if target[-1:] == [EOS_ID] else list(target)
        else:
            raise ValueError("target must be a translation (text) or its piece ids")
        if not target_ids or not all(self.is_output_piece(i) for i in target_ids):
            raise ValueError("the translation has no pieces this model can output")
        if len(target_ids) >= MAX_TARGET_LEN:
            raise ValueError(f"the translation has {len(target_ids)} pieces; at most {MAX_TARGET_LEN - 1} are scored")
        result = self._prepare(source, settings)
        if result["message"]:
            raise ValueError(result["message"])
        (sentence,) = result["sentences"]
        source_ids = sentence.pop("ids") + [EOS_ID]
        scoring = self.scoring(settings)
        with evaluating(self.model):
            (forced,) = search.force_decode(self.model, torch.tensor([source_ids]), torch.tensor([len(source_ids)]),
                                            [target_ids + [EOS_ID]], scoring, settings.alternatives, settings.heads)
        sentence["hypotheses"] = [self.hypothesis_dict(forced, forced=len(target_ids) + 1)]
        sentence["warnings"] = result["warnings"]
        return sentence

    def saliency(self, source: str, ids: list[int], method: str = "integrated_gradients",
                 steps: int = DEFAULT_STEPS, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> dict[str, Any]:
        """Which source pieces each piece of the output ``ids`` (of sentence ``source``) depends
        on, by gradients (see ``s2s.saliency``), beside the attention the model computes while
        reading the same output. Returns ``source_pieces``, ``pieces``, ``relevance`` and
        ``signed`` [len(ids)][len(source_pieces)], ``attention`` (None without attention),
        ``agreement`` (share of output pieces whose most relevant source piece is also the most
        attended one) and ``rank_correlation`` (per output piece, Spearman's between its saliency
        and attention rows), both None without attention, ``method``, ``steps`` and, for integrated
        gradients, ``convergence`` (per piece, how far the row's sum is from the exact change).
        ``memory_budget`` (bytes) bounds what the attribution holds at once; a sentence too long for
        it is refused before any work starts."""
        sentence = self.check_saliency(source, ids, method, steps)
        source_ids = sentence["ids"] + [EOS_ID]
        scores = source_saliency(self.model, source_ids, ids, method, steps, memory_budget)
        with evaluating(self.model):
            (forced,) = search.force_decode(self.model, torch.tensor([source_ids]), torch.tensor([len(source_ids)]),
                                            [ids])
        agreement = correlation = None
        if forced.attention is not None:
            agreement = float((scores["relevance"].argmax(-1) == forced.attention.argmax(-1)).float().mean())
            correlation = rank_correlation(scores["relevance"], forced.attention).tolist()
        return {
            "method": method, "steps": steps, "source_pieces": sentence["source_pieces"],
            "pieces": self.tokenizer.pieces(ids), "relevance": scores["relevance"].tolist(),
            "signed": scores["signed"].tolist(),
            "attention": None if forced.attention is None else forced.attention.tolist(), "agreement": agreement,
            "rank_correlation": correlation,
            "convergence": scores["convergence"].tolist() if "convergence" in scores else None,
        }

    def check_saliency(self, source: str, ids: list[int], method: str, steps: int) -> dict[str, Any]:
        """Refuse a saliency question that cannot or may not be answered (no gradients, ids not an
        output, an empty source, over ``saliency.MAX_SALIENCY_WORK``) before any work; returns
        the source's one sentence (``_prepare``)."""
        require_gradients(self.weights, "saliency")
        self.check_output(ids)
        result = self._prepare(source, make_settings(split_sentences=False))
        if result["message"]:
            raise ValueError(result["message"])
        (sentence,) = result["sentences"]
        check_work(len(sentence["ids"]) + 1, len(ids), method, steps)
        return sentence

    def neighbours(self, source: str, ids: list[int], side: str = "output", position: int = 0,
                   k: int = DEFAULT_NEIGHBOURS) -> dict[str, Any]:
        """The ``k`` training pieces whose hidden state is nearest that of piece ``position`` of the
        sentence ``source`` (``side`` "source") or of its output ``ids`` ("output"), from the model
        folder's neighbour index (see ``s2s.neighbours``). A ValueError (NeighbourIndexError) says
        how to build a missing index or rebuild a stale one."""
        self.check_output(ids)
        result = self._prepare(source, make_settings(split_sentences=False))
        if result["message"]:
            raise ValueError(result["message"])
        (sentence,) = result["sentences"]
        check_query(side, position, k, len(sentence["ids"]), ids)
        return find_neighbours(self.model, self.tokenizer, self.neighbour_index.get(), sentence["ids"] + [EOS_ID],
                               ids, side, position, k)

    def edited_prefix(self, ids: list[int], position: int, replacement: int | str) -> list[int]:
        """The forced prefix for "at ``position`` of the output ``ids``, say ``replacement``
        instead": ``ids[:position]`` and then a piece id (an alternative) or a typed word,
        tokenised as a word of its own."""
        if not isinstance(position, int) or not 0 <= position < len(ids):
            raise ValueError(f"position must be an output position in [0, {len(ids) - 1}], got {position!r}")
        if isinstance(replacement, str):
            replacement, _ = without_control_characters(replacement)
            if not replacement.strip():
                raise ValueError("type a word to put at this position")
            replacement_ids = self.tokenizer.encode(replacement.strip())
        elif isinstance(replacement, int) and not isinstance(replacement, bool):
            replacement_ids = [replacement]
        else:
            raise ValueError(f"replacement must be a piece id or a word, got {replacement!r}")
        return list(ids[:position]) + replacement_ids

    def _prepare(self, text: str, settings: DecodeSettings) -> dict[str, Any]:
        """The result of ``text`` before decoding: its sentences with their ids, or a message."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        result: dict[str, Any] = {"model": self.name, "source": text, "text": "", "sentences": [],
                                  "settings": dataclasses.asdict(settings), "warnings": [], "message": None}
        if not looks_like_text(text):
            result["message"] = EMPTY_MESSAGE
            return result
        if len(text) > MAX_INPUT_CHARS:
            result["message"] = (f"The input has {len(text):,} characters; at most {MAX_INPUT_CHARS:,} are "
                                 "translated at once. Translate it in parts.")
            return result
        sources = self.split(text) if settings.split_sentences else [text.strip()]
        if len(sources) > MAX_SENTENCES:
            result["message"] = (f"The input has {len(sources)} sentences; at most {MAX_SENTENCES} are "
                                 "translated at once. Translate it in parts.")
            return result
        limit = self.model.config.max_source_len - 1  # room for </s>
        for number, source in enumerate(sources, start=1):
            ids = self.tokenizer.encode(source)
            which = f"Sentence {number}" if len(sources) > 1 else "The input"
            if not ids:
                result["warnings"].append(f"{which} has nothing this model can read and was left out: {source!r}")
                continue
            result["warnings"] += unfamiliar_notes(self.tokenizer, ids, self.metrics.get("training_profile"), which)
            if len(ids) > limit:
                result["warnings"].append(f"{which} has {len(ids)} pieces; the model reads at most {limit}, "
                                          f"so the rest was cut off: \"{source[:60]}…\"")
                ids = ids[:limit]
            result["sentences"].append({"source": source, "ids": ids,
                                        "source_pieces": self.tokenizer.pieces(ids + [EOS_ID]),
                                        "source_words": word_spans(self.tokenizer.pieces(ids + [EOS_ID])),
                                        "hypotheses": [], "trace": None, "prefix": settings.prefix.strip(),
                                        "encoder_attention": None, "decoder_attention": None})
        if not result["sentences"]:
            return result | {"message": EMPTY_MESSAGE, "warnings": []}
        if settings.coverage_penalty not in (0.0, DEFAULT_COVERAGE_PENALTY) and not self.has_attention:
            result["warnings"].append("This model has no attention, so the coverage penalty has no effect.")
        return result

    @torch.inference_mode()
    def _decode(self, sources: list[list[int]], prefix_ids: list[int], settings: DecodeSettings,
                generator: torch.Generator, steering: torch.Tensor | None = None, with_attention: bool = True
                ) -> list[tuple[list[Hypothesis], list[BeamStep] | None]]:
        """The hypotheses (and beam trace) of each source, decoded together (see ``search``)."""
        source = pad([ids + [EOS_ID] for ids in sources])
        lengths = torch.tensor([len(ids) + 1 for ids in sources])
        max_lengths = (lengths.double() * settings.max_length_ratio + settings.max_length_extra).long()
        # At least one piece after the prefix before </s>, so no output is empty, whatever the ratio says.
        max_lengths = max_lengths.clamp(min=len(prefix_ids) + 2, max=max(MAX_TARGET_LEN, len(prefix_ids) + 2))
        min_lengths = torch.minimum((lengths.double() * settings.min_length_ratio).long(), max_lengths - 1) \
            if settings.min_length_ratio > 0 else None
        prefix = torch.tensor([prefix_ids] * len(sources)) if prefix_ids else None
        scoring = self.scoring(settings)
        with evaluating(self.model):
            return self._search(source, lengths, max_lengths, min_lengths, prefix, scoring, settings, generator,
                                steering, with_attention)

    def _search(self, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                min_lengths: torch.Tensor | None, prefix: torch.Tensor | None, scoring: search.Scoring,
                settings: DecodeSettings, generator: torch.Generator, steering: torch.Tensor | None,
                with_attention: bool) -> list[tuple[list[Hypothesis], list[BeamStep] | None]]:
        """The strategy of ``settings`` over source [B, S] (see ``s2s.search``)."""
        if settings.strategy == "greedy":
            hypotheses = search.greedy(self.model, source, lengths, max_lengths, prefix, scoring, min_lengths,
                                       settings.alternatives, steering, settings.heads, with_attention,
                                       settings.no_repeat_ngram)
            return [([h], None) for h in hypotheses]
        if settings.strategy == "sample":
            samples = search.sample(self.model, source, lengths, max_lengths, settings.nbest, settings.temperature,
                                    settings.top_k, settings.top_p, generator, prefix, scoring, min_lengths,
                                    settings.alternatives, steering, settings.heads, with_attention,
                                    settings.no_repeat_ngram)
            return [(h, None) for h in samples]
        beams, traces = search.beam_search(self.model, source, lengths, max_lengths, settings.beam_size,
                                           settings.nbest, scoring, settings.no_repeat_ngram, prefix, min_lengths,
                                           settings.alternatives, steering, settings.heads, with_attention)
        return list(zip(beams, traces))

    def scoring(self, settings: DecodeSettings) -> search.Scoring:
        """How ``settings`` rank hypotheses on this model: the coverage penalty (and the attention
        shown) over the last cross-attention layer's heads that are on."""
        last_layer = self.model.config.decoder_layers - 1
        return search.Scoring(alpha=settings.alpha, beta=settings.coverage_penalty,
                              heads_off=settings.heads.cross_off_in_layer(last_layer))

    def hypothesis_dict(self, hypothesis: Hypothesis, forced: int = 0) -> dict[str, Any]:
        """JSON form of a hypothesis, with pieces and detokenised text; its first ``forced``
        pieces were forced, not chosen by the search."""
        pieces = self.tokenizer.pieces(hypothesis.ids)
        return {
            "text": self.tokenizer.decode(hypothesis.ids),
            "pieces": pieces,
            "words": word_spans(pieces),
            "ids": hypothesis.ids,
            "token_logprobs": hypothesis.token_logprobs,
            "score": hypothesis.score,
            "normalized_score": hypothesis.normalized_score,
            "attention": None if hypothesis.attention is None else hypothesis.attention.tolist(),
            "head_attention": None if hypothesis.head_attention is None else hypothesis.head_attention.tolist(),
            "finished": hypothesis.finished,
            "parent_slots": hypothesis.parent_slots,
            "alternatives": [[{"id": piece_id, "piece": piece, "logprob": logprob}
                              for (piece_id, logprob), piece in zip(position, self.tokenizer.pieces([i for i, _ in position]))]
                             for position in hypothesis.alternatives],
            "forced": forced,
        }

    def trace_dicts(self, trace: list[BeamStep] | None) -> list[dict[str, Any]] | None:
        """JSON form of a beam trace. Each candidate also says whether its piece ``starts_word``
        after its own prefix (by ``merge_pieces``, the rule every view groups words by), so the
        page can draw the tree in words."""
        if trace is None:
            return None
        prefixes: dict[int, list[str]] = {0: []}  # the pieces of the prefix in each slot after the last step

        def starts_word(parent: int, piece: str) -> bool:
            # Only the last few pieces decide (the word so far, a bare ▁, punctuation), so the rule
            # runs on a window of them: the trace stays linear in the output's length.
            tail = tuple(prefixes.get(parent, [])[-WORD_WINDOW:])
            return word_count(tail + (piece,)) > word_count(tail)

        steps = []
        for step in trace:
            alive_pieces = self.tokenizer.pieces([token for _, token, _, _ in step.alive])
            pruned_pieces = self.tokenizer.pieces([token for token, _, _ in step.pruned])
            steps.append({
                "step": step.step,
                "alive": [{"slot": slot, "token": token, "piece": piece, "parent": parent, "score": score,
                           "starts_word": starts_word(parent, piece)}
                          for (slot, token, parent, score), piece in zip(step.alive, alive_pieces)],
                "finished": [{"parent": parent, "piece": EOS_PIECE, "score": score, "normalized_score": normalized,
                              "starts_word": True} for parent, score, normalized in step.finished],
                "pruned": [{"token": token, "piece": piece, "parent": parent, "score": score,
                            "starts_word": starts_word(parent, piece)}
                           for (token, parent, score), piece in zip(step.pruned, pruned_pieces)],
            })
            prefixes = {slot: prefixes.get(parent, []) + [piece]
                        for (slot, _, parent, _), piece in zip(step.alive, alive_pieces)}
        return steps


def load(folder: str | Path) -> Translator:
    """Load a checkpoint folder (see ``s2s.checkpoint``) as a ``Translator``."""
    return Translator.load(folder)

