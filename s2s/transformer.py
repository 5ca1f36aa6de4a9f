"""A compact encoder-decoder Transformer (Vaswani et al. 2017, "Attention Is All You Need"),
pre-layer-norm (Xiong et al. 2020), behind the same step interface as the RNN (see
``model.EncoderDecoder``), so search, training, saliency and the explorer serve both.

Notation of the paper: d_model = ``embedding_dim``, h = ``attention_heads``, d_k = d_model / h,
d_ff = ``feedforward_dim``, N = ``encoder_layers`` / ``decoder_layers``.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O
    head_i             = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_k)) V W_i^V
    sublayer(x)        = x + Dropout(F(LayerNorm(x)))       (pre-layer-norm residual)
    embed(y)           = sqrt(d_model) * E[y] + PE(position) (sinusoidal, Section 3.5)
    p(y_t)             = softmax(E LayerNorm(decoder output)_t)  (E shared by source, target, output)

Every attention computes its weights per head (``[N, h, T, S]``): search records the
cross-attention of every layer and head along each hypothesis's path, and a person can switch a
head off (its output is zeroed before W^O, Michel et al. 2019) or steer one. In training mode, and
when no weights are asked for, the fused ``scaled_dot_product_attention`` kernel does the work.
The decoder keeps an incremental key/value cache, so a search step costs one position.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig
from .heads import NO_HEAD_SETTINGS, HeadSettings
from .model import Dropout, EncoderDecoder, OutputLayer
from .tokenizer import PAD_ID

def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [T] -> PE [T, dim]: sin on even features, cos on odd ones (Section 3.5)."""
    rates = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) * (-math.log(10000.0) / dim))
    angles = positions.float().unsqueeze(1) * rates  # [T, dim / 2]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, :dim]


class PositionTable(nn.Module):
    """PE of positions start..start+T-1 -> [T, dim], sliced from a table computed once (and again,
    twice as long, when a longer sequence comes): a search step reads one row instead of computing
    it (the same numbers: ``sinusoidal_positions`` is elementwise in the positions). Not saved;
    built on the CPU even inside ``torch.device("meta")`` (the checkpoint's shape check, where a
    first meta ``arange`` would cost a second of imports), moved by ``.to(device)``."""

    def __init__(self, dim: int, length: int = 256) -> None:
        super().__init__()
        self.register_buffer("table", sinusoidal_positions(torch.arange(length, device="cpu"), dim),
                             persistent=False)

    def forward(self, start: int, steps: int) -> torch.Tensor:
        if start + steps > self.table.size(0):
            self.table = sinusoidal_positions(torch.arange(2 * (start + steps), device=self.table.device),
                                              self.table.size(1))
        return self.table[start:start + steps]


def attention_bias(allowed: torch.Tensor) -> torch.Tensor:
    """allowed [..., S] (True = may be attended to) -> the additive bias [..., S]: 0 where allowed,
    -inf elsewhere. Added to the scores it masks them exactly as masked_fill would, and it is
    built once (per source batch, or per causal block) instead of at every layer and step."""
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, float("-inf"))


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"embedding_dim ({d_model}) must be divisible by attention_heads ({heads})")
        self.heads, self.d_k, self.dropout_p = heads, d_model // heads, dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.output = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, d_model] -> [N, h, T, d_k]."""
        return x.view(x.size(0), x.size(1), self.heads, self.d_k).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, S, d_model] -> K, V, each [N, h, S, d_k]."""
        keys, values = self.key_value(x).chunk(2, dim=-1)
        return self.split(keys), self.split(values)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None,
                keep: torch.Tensor | None = None, steer: torch.Tensor | None = None, steer_head: int = -1,
                need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Queries x [N, T, d_model] attend to keys, values [N, h, S, d_k], masked by ``bias``
        [N or 1, 1, T or 1, S] (see ``attention_bias``; None: every key) -> output [N, T, d_model],
        weights [N, h, T, S] (None when not needed in training).
        ``keep`` [h] multiplies each head's output (0 = off); ``steer`` [N, T, S] replaces the
        weights of head ``steer_head`` (-1 = all) at rows not NaN."""
        query = self.split(self.query(x))
        if not need_weights and steer is None:
            context = F.scaled_dot_product_attention(query, keys, values, attn_mask=bias,
                                                     dropout_p=self.dropout_p if self.training else 0.0)
            weights = None
        else:
            scores = (query @ keys.transpose(-2, -1)) / math.sqrt(self.d_k)
            weights = (scores if bias is None else scores + bias).softmax(-1)
            if steer is not None:
                rows = steer.unsqueeze(1)  # [N, 1, T, S]
                steered = torch.where(rows[..., :1].isnan(), weights, rows)
                weights = steered if steer_head < 0 else torch.cat(
                    [weights[:, :steer_head], steered[:, steer_head:steer_head + 1], weights[:, steer_head + 1:]], 1)
            context = F.dropout(weights, self.dropout_p, self.training) @ values
        if keep is not None:
            context = context * keep.to(context.dtype).view(1, -1, 1, 1)
        merged = context.transpose(1, 2).reshape(x.size(0), x.size(1), -1)
        return self.output(merged), weights


def _feedforward(config: ModelConfig) -> nn.Sequential:
    return nn.Sequential(nn.Linear(config.embedding_dim, config.feedforward_dim), nn.ReLU(),
                         Dropout(config.dropout), nn.Linear(config.feedforward_dim, config.embedding_dim))


class EncoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self_attention_norm = nn.LayerNorm(config.embedding_dim)
        self.self_attention = MultiHeadAttention(config.embedding_dim, config.attention_heads, config.dropout)
        self.feedforward_norm = nn.LayerNorm(config.embedding_dim)
        self.feedforward = _feedforward(config)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, keep: torch.Tensor | None, need_weights: bool
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [N, S, d_model], bias [N, 1, 1, S] -> x [N, S, d_model], self-attention [N, h, S, S] or None."""
        normed = self.self_attention_norm(x)
        attended, weights = self.self_attention(normed, *self.self_attention.keys_values(normed), bias, keep,
                                                need_weights=need_weights)
        x = x + self.dropout(attended)
        return x + self.dropout(self.feedforward(self.feedforward_norm(x))), weights


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d_model, heads = config.embedding_dim, config.attention_heads
        self.self_attention_norm = nn.LayerNorm(d_model)
        self.self_attention = MultiHeadAttention(d_model, heads, config.dropout)
        self.cross_attention_norm = nn.LayerNorm(d_model)
        self.cross_attention = MultiHeadAttention(d_model, heads, config.dropout)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.feedforward = _feedforward(config)
        self.dropout = Dropout(config.dropout)


@dataclasses.dataclass
class TransformerMemory:
    """What the decoder reads, computed once per source batch: states [N, S, d_model] (the
    encoder's output), bias [N, 1, 1, S] (``attention_bias`` of the real tokens), the
    cross-attention keys and values of every decoder layer (each [N, h, S, d_k]) and the
    request's head settings."""

    states: torch.Tensor
    bias: torch.Tensor
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    heads: HeadSettings = NO_HEAD_SETTINGS

    def select(self, index: torch.Tensor) -> "TransformerMemory":
        """Rows ``index`` [N'] of every tensor (e.g. one copy per beam)."""
        return TransformerMemory(self.states.index_select(0, index), self.bias.index_select(0, index),
                                 [k.index_select(0, index) for k in self.keys],
                                 [v.index_select(0, index) for v in self.values], self.heads)


@dataclasses.dataclass
class TransformerState:
    """The decoder's key/value cache: per layer, the self-attention keys and values of the t
    target positions read so far, each [N, h, t, d_k]."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return self.keys[0].size(2)

    def select(self, index: torch.Tensor) -> "TransformerState":
        """Rows ``index`` [N'] of the cache (beam reordering)."""
        return TransformerState([k.index_select(0, index) for k in self.keys],
                                [v.index_select(0, index) for v in self.values])


class TransformerEncoder(nn.Module):
    def __init__(self, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        self.embedding = embedding
        self.dropout = Dropout(config.dropout)
        self.positions = PositionTable(config.embedding_dim)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.norm = nn.LayerNorm(config.embedding_dim)

    def forward(self, source: torch.Tensor, embedded: torch.Tensor | None = None,
                heads: HeadSettings = NO_HEAD_SETTINGS, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """source [N, S] ids (or their raw embeddings ``embedded`` [N, S, d_model]) -> states
        [N, S, d_model], self-attention [N, layers, h, S, S] (None unless ``need_weights``)."""
        embedded = self.embedding(source) if embedded is None else embedded
        x = self.dropout(embedded * math.sqrt(self.config.embedding_dim) + self.positions(0, source.size(1)))
        bias = attention_bias(source != PAD_ID)[:, None, None]  # [N, 1, 1, S]
        attention = []
        for number, layer in enumerate(self.layers):
            x, weights = layer(x, bias, heads.keep("encoder", number, self.config.attention_heads), need_weights)
            attention.append(weights)
        return self.norm(x), torch.stack(attention, 1) if need_weights else None


class TransformerDecoder(nn.Module):
    def __init__(self, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        self.embedding = embedding
        self.dropout = Dropout(config.dropout)
        self.positions = PositionTable(config.embedding_dim)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.decoder_layers))
        self.norm = nn.LayerNorm(config.embedding_dim)
        self.output = OutputLayer(config.embedding_dim, config.vocab_size)
        if config.tie_embeddings:
            self.output.weight = embedding.weight

    def initial_state(self, rows: int, device: torch.device) -> TransformerState:
        """An empty cache for ``rows`` decoder rows."""
        empty = torch.zeros(rows, self.config.attention_heads, 0,
                            self.config.embedding_dim // self.config.attention_heads, device=device)
        return TransformerState([empty] * len(self.layers), [empty] * len(self.layers))

    def attentional_states(self, previous: torch.Tensor, state: TransformerState, memory: TransformerMemory,
                           steer: torch.Tensor | None = None, need_weights: bool = True,
                           need_self_weights: bool = False
                           ) -> tuple[torch.Tensor, TransformerState, torch.Tensor | None, torch.Tensor | None]:
        """previous [N, T] ids (positions t..t+T-1 after the t cached ones) -> decoder output
        [N, T, d_model] (what the output layer reads), the cache extended by T positions,
        cross-attention [N, T, layers, h, S] (None unless ``need_weights``) and decoder
        self-attention [N, layers, h, T, t+T] (None unless ``need_self_weights``: search reads only
        the cross-attention, so its self-attention runs in the fused kernel). ``steer`` [N, T, S]
        replaces the cross-attention chosen by ``memory.heads`` at rows not NaN."""
        start, d_model, heads = state.length, self.config.embedding_dim, self.config.attention_heads
        steps = previous.size(1)
        x = self.dropout(self.embedding(previous) * math.sqrt(d_model) + self.positions(start, steps))
        # Position start + i reads the cached positions and itself; one new position reads them all.
        causal = None if steps == 1 else attention_bias(
            torch.ones(steps, start + steps, dtype=torch.bool, device=previous.device).tril(start))
        steer_layer = memory.heads.steer_layer % len(self.layers)
        keys, values, cross, self_attention = [], [], [], []
        for number, layer in enumerate(self.layers):
            normed = layer.self_attention_norm(x)
            new_keys, new_values = layer.self_attention.keys_values(normed)
            keys.append(torch.cat([state.keys[number], new_keys], 2))
            values.append(torch.cat([state.values[number], new_values], 2))
            attended, own = layer.self_attention(normed, keys[-1], values[-1], causal,
                                                 memory.heads.keep("decoder", number, heads),
                                                 need_weights=need_self_weights)
            x = x + layer.dropout(attended)
            attended, weights = layer.cross_attention(
                layer.cross_attention_norm(x), memory.keys[number], memory.values[number], memory.bias,
                memory.heads.keep("cross", number, heads), steer if number == steer_layer else None,
                memory.heads.steer_head, need_weights=need_weights)
            x = x + layer.dropout(attended)
            x = x + layer.dropout(layer.feedforward(layer.feedforward_norm(x)))
            cross.append(weights)
            self_attention.append(own)
        return (self.norm(x), TransformerState(keys, values),
                torch.stack(cross, 2).transpose(1, 3) if need_weights else None,
                torch.stack(self_attention, 1) if need_self_weights else None)

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """decoder output [..., d_model] -> output logits [..., V]."""
        return self.output(self.dropout(attentional))


class Transformer(EncoderDecoder):
    """The encoder-decoder Transformer of the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        source_embedding, target_embedding = self.embeddings(config)
        for table in {source_embedding, target_embedding}:  # scaled by sqrt(d_model) when read
            nn.init.normal_(table.weight, std=config.embedding_dim ** -0.5)
        self.encoder = TransformerEncoder(config, source_embedding)
        self.decoder = TransformerDecoder(config, target_embedding)

    def encode(self, source: torch.Tensor, lengths: torch.Tensor, source_embeddings: torch.Tensor | None = None,
               heads: HeadSettings = NO_HEAD_SETTINGS) -> tuple[TransformerMemory, TransformerState]:
        """source [B, S] (padding marks the lengths), or raw embeddings [B, S, d_model] -> memory with
        every decoder layer's cross-attention keys and values, and an empty cache."""
        heads.check(self.config)
        states, _ = self.encoder(source, source_embeddings, heads)
        return self._memory(states, source, heads), self.decoder.initial_state(source.size(0), source.device)

    def _memory(self, states: torch.Tensor, source: torch.Tensor, heads: HeadSettings) -> TransformerMemory:
        """Encoder states [B, S, d_model] of source [B, S] -> the decoder's memory. Its keys and values
        are made contiguous here, once: as slices of one projection they would be copied by the
        per-head matmuls of every decoder step instead."""
        keys, values = zip(*(layer.cross_attention.keys_values(states) for layer in self.decoder.layers))
        return TransformerMemory(states, attention_bias(source != PAD_ID)[:, None, None],
                                 [k.contiguous() for k in keys], [v.contiguous() for v in values], heads)

    def step(self, previous: torch.Tensor, state: TransformerState, memory: TransformerMemory,
             steer: torch.Tensor | None = None, with_attention: bool = True
             ) -> tuple[torch.Tensor, TransformerState, torch.Tensor | None]:
        """previous [N, T] ids -> logits [N, T, V], the cache extended by T, cross-attention
        [N, T, layers, heads, S] (None without ``with_attention`` and in training mode, where the
        fused kernel runs)."""
        attentional, state, cross, _ = self.decoder.attentional_states(
            previous, state, memory, steer, need_weights=with_attention and not self.training)
        return self.decoder.logits(attentional), state, cross

    def read(self, target_in: torch.Tensor, state: TransformerState, memory: TransformerMemory
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced decoder pass: target_in [B, T] -> decoder output [B, T, d_model],
        cross-attention [B, T, layers, heads, S] (None in training mode)."""
        attentional, _, cross, _ = self.decoder.attentional_states(target_in, state, memory,
                                                                   need_weights=not self.training)
        return attentional, cross

    def self_attention(self, source: torch.Tensor, target_in: torch.Tensor, heads: HeadSettings = NO_HEAD_SETTINGS
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """For the shown hypothesis: encoder self-attention [B, layers, heads, S, S] and decoder
        self-attention [B, layers, heads, T, T] of source [B, S] and target_in [B, T]."""
        heads.check(self.config)
        states, encoder_attention = self.encoder(source, None, heads, need_weights=True)
        _, _, _, decoder_attention = self.decoder.attentional_states(
            target_in, self.decoder.initial_state(source.size(0), source.device), self._memory(states, source, heads),
            need_self_weights=True)
        return encoder_attention, decoder_attention
