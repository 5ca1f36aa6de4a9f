"""The encoder-decoder: embeddings -> bidirectional RNN encoder -> attentional RNN decoder.

Decoder step t (Luong et al. 2015, Section 3, without input feeding):
    s_t      = RNN(embed(y_{t-1}), s_{t-1})                 decoder state
    c_t      = Attention(query=s_t, keys=values=h_1..h_S)   context  (attention != "none")
             = h_summary                                     fixed vector (attention == "none")
    h~_t     = tanh(W_c [s_t; c_t])                          attentional state, size embedding_dim
    p(y_t)   = softmax(W_o h~_t + b_o)                       W_o tied to the embeddings if asked
Because s_t does not depend on c_{t-1}, a teacher-forced target runs through the RNN in one
call, which is what makes training fast on a CPU. The same ``Decoder.forward`` serves
training (T target steps at once) and search (one step at a time), so the attention that
search returns is exactly the one the trained model computes.

With attention ``none`` the decoder sees only the final encoder state ``h_summary`` (the
concatenated last forward and backward states): it initialises s_0 and is the context at
every step, as in the fixed-vector models of Cho et al. 2014 and Sutskever et al. 2014.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Union

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .attention import Attention
from .config import ModelConfig
from .heads import NO_HEAD_SETTINGS, HeadSettings
from .tokenizer import PAD_ID

# GRU state: [layers, N, H]; LSTM state: (h, c), each [layers, N, H].
RNNState = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (no dropout) inside the block, and the model's own mode again after it: whoever
    validates or translates with a model it does not own leaves it as it found it."""
    if not model.training:  # nothing to switch (``train`` walks every module: 0.2 ms a call on de-en-transformer)
        yield model
        return
    model.eval()
    try:
        yield model
    finally:
        model.train()


@dataclasses.dataclass
class RNNDecoderState:
    """The RNN decoder's state s_t (``hidden``: batch is dimension 1)."""

    hidden: RNNState

    def select(self, index: torch.Tensor) -> "RNNDecoderState":
        """Rows ``index`` [N'] of the state (beam reordering)."""
        if isinstance(self.hidden, tuple):
            return RNNDecoderState(tuple(s.index_select(1, index) for s in self.hidden))  # type: ignore[arg-type]
        return RNNDecoderState(self.hidden.index_select(1, index))


@dataclasses.dataclass
class EncoderMemory:
    """What the decoder reads: computed once per source batch.

    states [N, S, 2*He], keys [N, S, Hd] (attention-projected states, None without attention),
    mask [N, S] (True = real token), summary [N, 2*He] (final forward + backward states).
    """

    states: torch.Tensor
    keys: torch.Tensor | None
    mask: torch.Tensor
    summary: torch.Tensor

    def select(self, index: torch.Tensor) -> "EncoderMemory":
        """Rows ``index`` [N'] of every field, e.g. to repeat each sentence once per beam."""
        return EncoderMemory(
            states=self.states.index_select(0, index),
            keys=None if self.keys is None else self.keys.index_select(0, index),
            mask=self.mask.index_select(0, index),
            summary=self.summary.index_select(0, index),
        )


def _rnn(kind: str, input_size: int, hidden: int, layers: int, dropout: float, bidirectional: bool) -> nn.RNNBase:
    rnn_class = nn.GRU if kind == "gru" else nn.LSTM
    return rnn_class(input_size, hidden, num_layers=layers, batch_first=True,
                     dropout=dropout if layers > 1 else 0.0, bidirectional=bidirectional)


class Dropout(nn.Dropout):
    """``nn.Dropout`` that in eval mode, where it is the identity, hands its input back without a
    module call. A search step passes six of them in de-en-transformer (two in the RNN). With this
    class, 200 sentences of de-en-transformer, greedy, one at a time, took 3.79 s against 3.90 s
    for the whole process (medians of 7 alternating runs)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return super().__call__(x) if self.training else x


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(config.dropout)
        self.rnn = _rnn(config.rnn_type, config.embedding_dim, config.encoder_hidden,
                        config.encoder_layers, config.dropout, bidirectional=True)

    def forward(self, source: torch.Tensor, lengths: torch.Tensor, embedded: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """source [B, S] ids, lengths [B] -> states [B, S, 2*He] (0 on padding), summary [B, 2*He].
        ``embedded`` [B, S, E]: source embeddings to read instead of looking them up (attribution
        methods move them between a baseline and the real ones)."""
        embedded = self.dropout(self.embedding(source) if embedded is None else embedded)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, final = self.rnn(packed)
        states, _ = pad_packed_sequence(outputs, batch_first=True, total_length=source.size(1))
        final_hidden = final[0] if isinstance(final, tuple) else final  # [layers * 2, B, He]
        summary = torch.cat([final_hidden[-2], final_hidden[-1]], dim=-1)
        return self.dropout(states), summary


class OutputLayer(nn.Linear):
    """The decoder's output layer: x [..., E] -> logits x W^T + b [..., V] (W [V, E], tied to the
    embeddings when asked). Without gradients (search, evaluation) it multiplies by a contiguous
    copy of W^T [E, V], made again whenever W changes (another tensor, or an in-place update such
    as an optimiser step): at a few rows MKL's kernel for x W^T is much slower than for x (W^T),
    305 against 180 us for a beam-5 step of an 8,000-piece vocabulary on the 2-core Xeon, and this
    layer is the largest a search step reads. The copy costs W's size once more (8 MB at 8,000 x
    256). With gradients it is ``nn.Linear`` unchanged."""

    _transposed: tuple[tuple[int, int], torch.Tensor] | None = None  # (W's data pointer and version), W^T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return super().forward(x)
        key = (self.weight.data_ptr(), self.weight._version)
        if self._transposed is None or self._transposed[0] != key:
            self._transposed = (key, self.weight.detach().t().contiguous())
        flat = x.reshape(-1, x.size(-1))
        logits = flat @ self._transposed[1] if self.bias is None else torch.addmm(self.bias, flat, self._transposed[1])
        return logits.view(*x.shape[:-1], logits.size(-1))


class Decoder(nn.Module):
    def __init__(self, config: ModelConfig, embedding: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        key_dim = 2 * config.encoder_hidden
        self.embedding = embedding
        self.dropout = Dropout(config.dropout)
        self.bridge = nn.Linear(key_dim, config.decoder_layers * config.decoder_hidden)
        self.rnn = _rnn(config.rnn_type, config.embedding_dim, config.decoder_hidden,
                        config.decoder_layers, config.dropout, bidirectional=False)
        self.attention = (None if config.attention == "none"
                          else Attention(config.attention, config.decoder_hidden, key_dim))
        self.combine = nn.Linear(config.decoder_hidden + key_dim, config.embedding_dim)
        self.output = OutputLayer(config.embedding_dim, config.vocab_size)
        if config.tie_embeddings:
            self.output.weight = embedding.weight

    def initial_state(self, summary: torch.Tensor) -> RNNState:
        """summary [N, 2*He] -> s_0 [layers, N, Hd] (and a zero LSTM cell)."""
        layers, hidden = self.config.decoder_layers, self.config.decoder_hidden
        state = torch.tanh(self.bridge(summary)).view(-1, layers, hidden).transpose(0, 1).contiguous()
        return (state, torch.zeros_like(state)) if self.config.rnn_type == "lstm" else state

    def attentional_states(self, previous: torch.Tensor, state: RNNState, memory: EncoderMemory,
                           steer: torch.Tensor | None = None) -> tuple[torch.Tensor, RNNState, torch.Tensor | None]:
        """previous [N, T] ids y_0..y_{T-1} -> attentional states h~ [N, T, E] (what the output
        layer reads), new state, alphas [N, T, S] or None. ``steer`` [N, T, S]: attention weights
        to use instead of the model's at rows not NaN."""
        embedded = self.dropout(self.embedding(previous))
        queries, state = self.rnn(embedded, state)  # [N, T, Hd]
        attentional, alphas = self.attend(queries, memory, steer)
        return attentional, state, alphas

    def last_attentional_states(self, previous: torch.Tensor, lengths: torch.Tensor, state: RNNState,
                                memory: EncoderMemory) -> tuple[torch.Tensor, torch.Tensor | None]:
        """previous [N, T] ids, row n real up to ``lengths`` [N] -> the attentional state at each
        row's last real step [N, E] and its alphas [N, S] or None: the RNN runs packed (padding
        costs nothing) and only that step is attended (teacher-forced, as ``attentional_states``)."""
        embedded = self.dropout(self.embedding(previous))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, final = self.rnn(packed, state)
        last = (final[0] if isinstance(final, tuple) else final)[-1]  # the top layer's last step [N, Hd]
        attentional, alphas = self.attend(last.unsqueeze(1), memory)
        return attentional.squeeze(1), None if alphas is None else alphas.squeeze(1)

    def attend(self, queries: torch.Tensor, memory: EncoderMemory, steer: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """queries s_t [N, T, Hd] -> attentional states h~ = tanh(W_c [s_t; c_t]) [N, T, E], alphas
        [N, T, S] or None (without attention c_t is the encoder's summary)."""
        if self.attention is None:
            context = memory.summary.unsqueeze(1).expand(-1, queries.size(1), -1)
            alphas = None
        else:
            context, alphas = self.attention(queries, memory.keys, memory.states, memory.mask, steer)
        return torch.tanh(self.combine(torch.cat([queries, context], dim=-1))), alphas

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """attentional states [..., E] -> output logits [..., V]."""
        return self.output(self.dropout(attentional))

    def forward(self, previous: torch.Tensor, state: RNNState, memory: EncoderMemory,
                steer: torch.Tensor | None = None) -> tuple[torch.Tensor, RNNState, torch.Tensor | None]:
        """previous [N, T] ids -> logits [N, T, V], new state, alphas [N, T, S] or None (see
        ``attentional_states``)."""
        attentional, state, alphas = self.attentional_states(previous, state, memory, steer)
        return self.logits(attentional), state, alphas


class EncoderDecoder(nn.Module):
    """What search, training, saliency and the explorer need of a model, whatever its architecture.

    - ``encode(source [B, S], lengths [B], source_embeddings [B, S, E] or None, heads)`` -> memory,
      state: the memory the decoder reads and its initial state; both have ``select(rows)``, which
      picks rows (one copy per beam, beam reordering).
    - ``step(previous [N, T], state, memory, steer [N, T, S] or None, with_attention)`` -> logits
      [N, T, V], the new state, cross-attention [N, T, S] (one distribution per step, the RNN) or
      [N, T, layers, heads, S] (every layer and head, the Transformer), or None without attention or
      when ``with_attention`` is False (then the Transformer runs its fused attention kernel, which
      keeps no weights). Search calls it with T = 1.
    - ``read(target_in [N, T], state, memory)`` -> what the output layer reads at every target
      position [N, T, D] and the cross-attention (see ``step``): the teacher-forced decoder pass.
    - ``last_states(target_in [N, T], lengths [N], state, memory)`` -> ``read``'s at each row's last
      real position only, [N, D] and [N, S] (or [N, layers, heads, S]): the neighbour index's re-ranking.
    - ``states`` -> the encoder's states and ``read``'s (the neighbour index); ``teacher_forced_states``
      -> ``read``'s; ``forward`` -> logits and cross-attention (training, force-decoding).
    ``encoder.embedding`` looks source ids up; ``decoder.logits`` is the output layer.
    """

    config: ModelConfig
    encoder: nn.Module
    decoder: nn.Module

    @property
    def has_attention(self) -> bool:
        return self.config.attention != "none" or self.config.arch == "transformer"

    def encode(self, source: torch.Tensor, lengths: torch.Tensor, source_embeddings: torch.Tensor | None = None,
               heads: HeadSettings = NO_HEAD_SETTINGS) -> tuple[Any, Any]:
        raise NotImplementedError

    def step(self, previous: torch.Tensor, state: Any, memory: Any, steer: torch.Tensor | None = None,
             with_attention: bool = True) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        raise NotImplementedError

    def read(self, target_in: torch.Tensor, state: Any, memory: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def last_states(self, target_in: torch.Tensor, lengths: torch.Tensor, state: Any, memory: Any
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``read``'s at each row's last real position only: target_in [N, T], row n real up to
        ``lengths`` [N] -> [N, D] and the cross-attention there ([N, S] or [N, layers, heads, S])."""
        attentional, alphas = self.read(target_in, state, memory)
        rows, last = torch.arange(target_in.size(0)), lengths.to(target_in.device) - 1
        return attentional[rows, last], None if alphas is None else alphas[rows, last]

    def states(self, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor,
               source_embeddings: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Teacher-forced pass up to the output layer: source [B, S], target_in [B, T] -> the
        encoder's states [B, S, De], what the output layer reads at each target position [B, T, D]
        (the state that predicts target piece t), cross-attention (see ``step``)."""
        memory, state = self.encode(source, lengths, source_embeddings, heads)
        attentional, alphas = self.read(target_in, state, memory)
        return memory.states, attentional, alphas

    def teacher_forced_states(self, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor,
                              source_embeddings: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS
                              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``states`` without the encoder's: [B, T, D] and the cross-attention."""
        _, attentional, alphas = self.states(source, lengths, target_in, source_embeddings, heads)
        return attentional, alphas

    def forward(self, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor,
                source_embeddings: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced pass: source [B, S], target_in [B, T] -> logits [B, T, V], cross-attention
        ([B, T, S] or [B, T, layers, heads, S], see ``step``)."""
        attentional, alphas = self.teacher_forced_states(source, lengths, target_in, source_embeddings, heads)
        return self.decoder.logits(attentional), alphas

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def embeddings(config: ModelConfig) -> tuple[nn.Embedding, nn.Embedding]:
        """The source and target embeddings [V, E]: one shared table with ``tie_embeddings``."""
        source = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        target = source if config.tie_embeddings else nn.Embedding(config.vocab_size, config.embedding_dim,
                                                                   padding_idx=PAD_ID)
        return source, target


class Seq2Seq(EncoderDecoder):
    """The attentional RNN of the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        source_embedding, target_embedding = self.embeddings(config)
        self.encoder = Encoder(config, source_embedding)
        self.decoder = Decoder(config, target_embedding)

    def encode(self, source: torch.Tensor, lengths: torch.Tensor, source_embeddings: torch.Tensor | None = None,
               heads: HeadSettings = NO_HEAD_SETTINGS) -> tuple[EncoderMemory, RNNDecoderState]:
        """source [B, S], lengths [B] (and optionally their embeddings [B, S, E]) -> memory for the
        decoder and its initial state s_0. An RNN has no heads to switch off or steer."""
        if not heads.is_default:
            raise ValueError("This model is an RNN: it has one attention, no heads to switch off or steer.")
        states, summary = self.encoder(source, lengths, source_embeddings)
        attention = self.decoder.attention
        memory = EncoderMemory(
            states=states,
            keys=None if attention is None else attention.project_keys(states),
            mask=source != PAD_ID,
            summary=summary,
        )
        return memory, RNNDecoderState(self.decoder.initial_state(summary))

    def step(self, previous: torch.Tensor, state: RNNDecoderState, memory: EncoderMemory,
             steer: torch.Tensor | None = None, with_attention: bool = True
             ) -> tuple[torch.Tensor, RNNDecoderState, torch.Tensor | None]:
        """previous [N, T] ids -> logits [N, T, V], new state, alphas [N, T, S] or None (the
        attention is computed either way: the context vector needs it)."""
        logits, hidden, alphas = self.decoder(previous, state.hidden, memory, steer)
        return logits, RNNDecoderState(hidden), alphas if with_attention else None

    def read(self, target_in: torch.Tensor, state: RNNDecoderState, memory: EncoderMemory
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced decoder pass: target_in [B, T] -> attentional states [B, T, E], alphas
        [B, T, S] or None."""
        attentional, _, alphas = self.decoder.attentional_states(target_in, state.hidden, memory)
        return attentional, alphas

    def last_states(self, target_in: torch.Tensor, lengths: torch.Tensor, state: RNNDecoderState,
                    memory: EncoderMemory) -> tuple[torch.Tensor, torch.Tensor | None]:
        """See ``EncoderDecoder.last_states``: the decoder packed, one attention step per row."""
        return self.decoder.last_attentional_states(target_in, lengths, state.hidden, memory)
