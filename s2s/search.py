"""Search: greedy, sampling, batched beam search and force-decoding, all on one decoder step.

Every function takes a batch of encoded sources and returns, for each sentence, a list of
``Hypothesis`` that carries its ids, per-token log-probabilities, scores and the attention
matrix along its own path. Beam search also returns a trace of the search (``BeamStep``).

Shared conventions
- ``source`` [B, S] ids ending in </s>, right-padded; ``lengths`` [B] real lengths.
- ``max_lengths`` [B]: the most target tokens (</s> included) per sentence; at the last
  allowed step only </s> may be chosen, so every hypothesis ends.
- ``prefix`` [B, P] target ids to force at the start (-1 = no constraint), or None.
- Output log-probabilities never include <pad>, <s> or <unk>: they are masked before the
  softmax, so the distribution is renormalised over tokens that can be shown.
- ``steering`` [B, T, S] or None: attention weights a person set, used at step t instead of the
  model's own where ``steering[b, t]`` is not NaN (see ``Attention.forward``).
- ``min_lengths`` [B] or None: </s> is forbidden before this many output tokens (a forced
  token still wins).
- ``alternatives``: how many of the model's most probable next pieces to record at each output
  position (``Hypothesis.alternatives``), taken from the same decoder step the search uses,
  given the hypothesis's own prefix and before any constraint; 0 records none.
- Scores are sums of natural-log probabilities; the normalised score divides by the GNMT
  length penalty lp(L) = ((5 + L) / 6) ** alpha and adds the GNMT coverage penalty
  cp = beta * sum_j log(min(sum_t a_tj, 1)) over source tokens j (Wu et al. 2016, eq. 14);
  alpha 0 and beta 0 give the raw log-probability. cp <= 0 punishes a hypothesis that leaves
  source tokens unattended, which is how a long input collapses to a short output.
- ``with_attention`` False: the caller needs only the outputs. Beam search and sampling, which
  rank by the normalised score, still keep the attention while the coverage penalty reads it
  (``Scoring.reads_attention``), so their outputs are the same either way; otherwise, and always
  in greedy (which ranks nothing), no attention is kept (every ``Hypothesis.attention`` is None,
  the Transformer's steps run the fused attention kernel, no coverage penalty is added).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import torch


from .heads import NO_HEAD_SETTINGS, HeadSettings, last_layer_average
from .model import EncoderDecoder
from .tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEG_INF = float("-inf")
NEVER_OUTPUT = (PAD_ID, BOS_ID, UNK_ID)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def coverage_penalty(attention: torch.Tensor | None, beta: float) -> float:
    """GNMT coverage penalty beta * sum_j log(min(sum_t a_tj, 1)) of attention [T, S]; 0 when
    beta is 0 or the model has no attention."""
    if beta == 0.0 or attention is None:
        return 0.0
    coverage = attention.sum(0).clamp(min=1e-9, max=1.0)
    return beta * float(coverage.log().sum())


@dataclasses.dataclass(frozen=True)
class Scoring:
    """How a finished hypothesis is ranked: length penalty ``alpha``, coverage penalty ``beta``
    over the attention shown, which leaves out ``heads_off``, the last cross-attention layer's
    heads switched off (see ``last_layer_average``)."""

    alpha: float = 0.0
    beta: float = 0.0
    heads_off: tuple[int, ...] = ()

    def normalize(self, score: float, length: int, attention: torch.Tensor | None) -> float:
        """score / lp(length) + cp(attention)."""
        return score / length_penalty(length, self.alpha) + coverage_penalty(attention, self.beta)

    @property
    def reads_attention(self) -> bool:
        """Whether the ranking needs the attention (the coverage penalty is on)."""
        return self.beta > 0


@dataclasses.dataclass
class Hypothesis:
    """One output sequence. ``attention`` is [len(ids), source_len] over real source tokens
    (None for a model without attention): the RNN's one distribution per step, or for a
    Transformer the average over heads of its last layer's cross-attention, whose every layer
    and head ``head_attention`` holds, [layers, heads, len(ids), source_len] (None for the RNN);
    ``alternatives`` holds, at each position, the model's top pieces as (id, log-probability),
    best first.

    ``parent_slots`` (beam search only; empty otherwise) holds, for each token t, the beam slot
    that the prefix ids[:t] occupied after step t - 1, i.e. the back-pointer followed when token t
    was chosen; ``parent_slots[0]`` is 0 (the only prefix before step 0 is the empty one). The
    token at step t therefore sits in slot ``parent_slots[t + 1]`` of ``BeamStep.alive`` at step t
    (for t < len(ids) - 1), and the hypothesis ended from slot ``parent_slots[-1]``."""

    ids: list[int]
    token_logprobs: list[float]
    score: float
    normalized_score: float
    attention: torch.Tensor | None
    finished: bool
    parent_slots: list[int] = dataclasses.field(default_factory=list)
    alternatives: list[list[tuple[int, float]]] = dataclasses.field(default_factory=list)
    head_attention: torch.Tensor | None = None


def make_hypothesis(ids: list[int], token_logprobs: list[float], attention: torch.Tensor | None,
                    source_length: int, scoring: "Scoring", top_values: torch.Tensor | None = None,
                    top_ids: torch.Tensor | None = None, parent_slots: list[int] | None = None) -> Hypothesis:
    """The one place a hypothesis is built: ids [T] (ending in </s> when finished), their
    log-probabilities [T], attention [T, S'] or every head's [T, layers, heads, S'] or None (cut to
    the ``source_length`` real source tokens), the model's top pieces per position top_values,
    top_ids [T, A] or None."""
    head_attention = None
    if attention is not None:
        attention = attention[..., :source_length].clone()
        if attention.dim() == 4:
            head_attention = attention.permute(1, 2, 0, 3).contiguous()  # [layers, heads, T, S]
            attention = last_layer_average(attention, scoring.heads_off)
    score = math.fsum(token_logprobs)
    return Hypothesis(
        ids=ids, token_logprobs=token_logprobs, score=score,
        normalized_score=scoring.normalize(score, len(ids), attention), attention=attention,
        finished=ids[-1:] == [EOS_ID], parent_slots=parent_slots or [], head_attention=head_attention,
        alternatives=[] if top_ids is None or top_ids.size(-1) == 0 else
        [list(zip(row_ids, row_values)) for row_ids, row_values in zip(top_ids.tolist(), top_values.tolist())])


@dataclasses.dataclass
class PathHistory:
    """What a search's decoder rows have emitted, one entry per step, each row with a back-pointer:
    a step copies no path so far, and a path is followed back only when a hypothesis is built.

    The decoder computes step t on its R_t *input rows*; the step writes *output rows*. For each
    output row r of step t: ``parents[t][r]`` (the input row whose prefix it continues),
    ``tokens[t][r]``, ``logprobs[t][r]`` and ``slots[t][r]`` (beam search's back-pointer slot, see
    ``Hypothesis.parent_slots``; ``slots`` is None for other strategies). For the input rows of step t, what the
    decoder step computed there: ``attention[t]`` [R_t, S] or [R_t, layers, heads, S] (None without
    attention) and the model's top pieces ``top_values[t]``, ``top_ids[t]`` [R_t, A] (None when
    A is 0). ``inputs[t]`` maps each input row of step t to an output row of step t - 1 (None:
    input row m is output row m, as when every row goes on). ``select`` sets the next step's.
    """

    parents: list[list[int]] = dataclasses.field(default_factory=list)
    tokens: list[list[int]] = dataclasses.field(default_factory=list)
    logprobs: list[list[float]] = dataclasses.field(default_factory=list)
    slots: list[list[int]] | None = None
    attention: list[torch.Tensor] = dataclasses.field(default_factory=list)
    top_values: list[torch.Tensor] = dataclasses.field(default_factory=list)
    top_ids: list[torch.Tensor] = dataclasses.field(default_factory=list)
    inputs: list[list[int] | None] = dataclasses.field(default_factory=list)
    _next_inputs: list[int] | None = None
    _emitted: tuple[int, list[list[int]]] = (-1, [])  # token_paths' last answer: (steps, ids per input row)

    def append(self, parents: list[int], tokens: list[int], logprobs: list[float], slots: list[int] | None,
               attention: torch.Tensor | None, top_values: torch.Tensor | None, top_ids: torch.Tensor | None) -> None:
        """One more step: its output rows (``parents``, ``tokens``, ``logprobs``, ``slots``, each
        one entry per output row) and, per input row, attention [R, ...] and top pieces [R, A]."""
        self.inputs.append(self._next_inputs)
        self._next_inputs = None
        self.parents.append(parents)
        self.tokens.append(tokens)
        self.logprobs.append(logprobs)
        if self.slots is not None and slots is not None:
            self.slots.append(slots)
        for history, step in ((self.attention, attention), (self.top_values, top_values), (self.top_ids, top_ids)):
            if step is not None:
                history.append(step)

    def select(self, rows: list[int]) -> None:
        """The next step's input rows are these output rows of the last step."""
        self._next_inputs = rows if self._next_inputs is None else [self._next_inputs[row] for row in rows]

    def _path(self, row: int) -> tuple[list[int], list[int], list[float], list[int]]:
        """Output row ``row`` of the last step followed back to step 0: its input row at each step,
        ids, log-probabilities and slots."""
        steps = len(self.parents)
        inputs, ids, logprobs, slots = [0] * steps, [0] * steps, [0.0] * steps, [0] * steps
        for step in range(steps - 1, -1, -1):
            ids[step], logprobs[step] = self.tokens[step][row], self.logprobs[step][row]
            if self.slots is not None:
                slots[step] = self.slots[step][row]
            inputs[step] = self.parents[step][row]
            row = inputs[step] if self.inputs[step] is None else self.inputs[step][inputs[step]]  # type: ignore[index]
        return inputs, ids, logprobs, slots

    def token_paths(self, rows: int) -> torch.Tensor:
        """The ids emitted so far [rows, t] along the path of each of the next step's ``rows`` input
        rows. Called at every step (the n-gram ban), it extends the last step's paths by one id."""
        steps = len(self.parents)
        last = range(rows) if self._next_inputs is None else self._next_inputs
        if steps and self._emitted[0] == steps - 1:
            before = self._emitted[1]
            paths = [before[self.parents[-1][row]] + [self.tokens[-1][row]] for row in last]
        else:
            paths = [self._path(row)[1] for row in last]
        self._emitted = (steps, paths)
        return torch.tensor(paths, dtype=torch.long).view(rows, steps)

    def hypotheses(self, rows: list[int], source_lengths: list[int], scoring: "Scoring") -> list[Hypothesis]:
        """Output rows ``rows`` of the last step, each with its sentence's real source length, as
        hypotheses; the per-step tensors of all of them are gathered in one indexing per kind."""
        if not rows:
            return []
        paths = [self._path(row) for row in rows]
        index = torch.tensor([path[0] for path in paths])  # [H, T]: the input row of each step
        def gather(history: list[torch.Tensor]) -> torch.Tensor | None:
            """Each hypothesis's rows of one kind, [H, T, ...]."""
            if not history:
                return None
            offsets = torch.tensor([0] + [step.size(0) for step in history[:-1]]).cumsum(0)  # [T]: each step's start
            return torch.cat(history)[index + offsets]

        attention, top_values, top_ids = gather(self.attention), gather(self.top_values), gather(self.top_ids)
        return [make_hypothesis(ids, logprobs, None if attention is None else attention[number], length, scoring,
                                None if top_values is None else top_values[number],
                                None if top_ids is None else top_ids[number],
                                None if self.slots is None else slots)
                for number, ((_, ids, logprobs, slots), length) in enumerate(zip(paths, source_lengths))]


@dataclasses.dataclass
class BeamStep:
    """The beam after step ``step`` for one sentence.

    ``alive``: the candidates kept, as (slot, token, parent_slot, score) where ``parent_slot``
    is the slot of its prefix at step - 1 (0 at step 0). ``finished``: the candidates that
    ended with </s> at this step, as (parent_slot, score, normalized_score). ``pruned``: the
    other candidates scored among the best 2K at this step and dropped, as (token, parent_slot,
    score) — why a word fell out of the beam.
    """

    step: int
    alive: list[tuple[int, int, int, float]]
    finished: list[tuple[int, float, float]]
    pruned: list[tuple[int, int, float]] = dataclasses.field(default_factory=list)


def decoder_log_probs(model: EncoderDecoder, previous: torch.Tensor, state: Any, memory: Any,
                      steer: torch.Tensor | None = None, with_attention: bool = True
                      ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
    """One decoder step: previous [N] ids -> log-probs [N, V], state, cross-attention [N, S] (RNN)
    or [N, layers, heads, S] (Transformer) or None (also without ``with_attention``); ``steer``
    [N, S] (NaN rows: the model's own attention) sets where it looks."""
    logits, state, alphas = model.step(previous.unsqueeze(1), state, memory,
                                       None if steer is None else steer.unsqueeze(1), with_attention)
    logits = logits[:, -1].float()
    logits[:, NEVER_OUTPUT] = NEG_INF
    return torch.log_softmax(logits, dim=-1), state, None if alphas is None else alphas[:, -1]


def top_alternatives(log_probs: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most probable pieces of log_probs [..., V]: (log-probs, ids), each [..., count]."""
    return log_probs.topk(min(count, log_probs.size(-1)), dim=-1)


def constrain(log_probs: torch.Tensor, step: int, max_lengths: torch.Tensor,
              prefix: torch.Tensor | None, min_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Force the prefix token while ``step`` is inside the prefix, and </s> at the last step;
    forbid </s> at the first step, so that no output is empty, and before ``min_lengths``.

    log_probs [N, V], max_lengths [N], prefix [N, P] or None, min_lengths [N] or None ->
    log_probs [N, V]; forced tokens keep their model log-probability, every other token gets -inf.
    """
    if (step > 0 and min_lengths is None and (prefix is None or step >= prefix.size(1))
            and step < int(max_lengths.min()) - 1):
        return log_probs  # nothing is forced or forbidden at this step (most steps: a dozen operations saved)
    forced = torch.full_like(max_lengths, -1)
    if prefix is not None and step < prefix.size(1):
        forced = prefix[:, step].clone()
    forced = torch.where(step >= max_lengths - 1, torch.full_like(forced, EOS_ID), forced)
    too_short = torch.full_like(forced, step == 0, dtype=torch.bool)
    if min_lengths is not None:
        too_short |= step < min_lengths
    log_probs[too_short & (forced < 0), EOS_ID] = NEG_INF
    rows = (forced >= 0).nonzero().squeeze(1)
    if rows.numel():
        keep = log_probs[rows, forced[rows]]
        log_probs[rows] = NEG_INF
        log_probs[rows, forced[rows]] = keep
    return log_probs


def ban_repeated_ngrams(log_probs: torch.Tensor, history: torch.Tensor, n: int, step: int = 0,
                        prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Forbid tokens that would repeat an n-gram already in ``history`` [N, t] (log_probs [N, V]).

    </s> is never banned, so a hypothesis can always end; nor is anything in a row whose forced
    ``prefix`` [N, P] (-1 = free) fixes the token of ``step``: what a person forced is kept even
    where it repeats, and the ban applies from the first piece the search chooses.
    """
    if n <= 0 or history.size(1) < n:
        return log_probs
    ngrams = history.unfold(1, n, 1)  # [N, t-n+1, n]
    current = history[:, history.size(1) - n + 1:]  # [N, n-1]
    matches = (ngrams[:, :, : n - 1] == current.unsqueeze(1)).all(-1)  # [N, t-n+1]
    if prefix is not None and step < prefix.size(1):
        matches &= (prefix[:, step] < 0).unsqueeze(1)
    rows, positions = matches.nonzero(as_tuple=True)
    end_scores = log_probs[:, EOS_ID].clone()
    log_probs[rows, ngrams[rows, positions, n - 1]] = NEG_INF
    log_probs[:, EOS_ID] = end_scores
    return log_probs


def steering_at(steering: torch.Tensor | None, step: int, rows: torch.Tensor | None = None) -> torch.Tensor | None:
    """The steering of ``step`` [N, S] (None when no row is steered then); ``rows`` picks the
    sentence of each decoder row (beams and samples)."""
    if steering is None or step >= steering.size(1):
        return None
    weights = steering[:, step] if rows is None else steering[rows, step]
    return None if bool(weights[:, 0].isnan().all()) else weights


@dataclasses.dataclass(frozen=True)
class Going:
    """The decoder rows a search still computes, and each one's limits: ``rows`` [N] the batch row
    (greedy, sampling) or sentence (beam search) of each, and their max_lengths [N], prefix [N, P]
    or None, min_lengths [N] or None. Rows whose output is complete leave (``select``), so a
    batch's later steps cost only what is left of it; every row's numbers stay its own."""

    rows: torch.Tensor
    max_lengths: torch.Tensor
    prefix: torch.Tensor | None
    min_lengths: torch.Tensor | None

    @classmethod
    def of(cls, rows: torch.Tensor, max_lengths: torch.Tensor, prefix: torch.Tensor | None,
           min_lengths: torch.Tensor | None) -> "Going":
        """Rows ``rows`` [N] of the per-sentence limits (e.g. one copy per beam)."""
        return cls(torch.arange(max_lengths.size(0)), max_lengths, prefix, min_lengths).select(rows)

    def select(self, index: torch.Tensor) -> "Going":
        """Rows ``index`` [N'] of these."""
        return Going(self.rows[index], self.max_lengths[index], None if self.prefix is None else self.prefix[index],
                     None if self.min_lengths is None else self.min_lengths[index])


Chooser = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def _decode_paths(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                  prefix: torch.Tensor | None, choose: Chooser, scoring: Scoring,
                  min_lengths: torch.Tensor | None, alternatives: int,
                  steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS,
                  with_attention: bool = True, no_repeat_ngram: int = 0) -> list[Hypothesis]:
    """Follow one path per row, picking each token with ``choose`` (log_probs [N, V] -> ids [N])
    among those ``no_repeat_ngram`` allows. A row leaves the batch at its </s>: the next steps
    compute only the rows still going."""
    memory, state = model.encode(source, lengths, heads=heads)
    going = Going.of(torch.arange(source.size(0)), max_lengths, prefix, min_lengths)
    previous = torch.full((source.size(0),), BOS_ID, dtype=torch.long)
    history = PathHistory()
    hypotheses: list[Hypothesis | None] = [None] * source.size(0)
    source_lengths = lengths.tolist()
    for step in range(int(max_lengths.max())):
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory,
                                                     steering_at(steering, step, going.rows), with_attention)
        top_values, top_ids = top_alternatives(log_probs, alternatives) if alternatives else (None, None)
        if no_repeat_ngram > 0:
            log_probs = ban_repeated_ngrams(log_probs, history.token_paths(log_probs.size(0)), no_repeat_ngram,
                                            step, going.prefix)
        log_probs = constrain(log_probs, step, going.max_lengths, going.prefix, going.min_lengths)
        previous = choose(log_probs)
        tokens = previous.tolist()
        history.append(list(range(len(tokens))), tokens, log_probs.gather(1, previous.unsqueeze(1)).squeeze(1).tolist(),
                       None, alphas, top_values, top_ids)
        ended = [position for position, token in enumerate(tokens) if token == EOS_ID]
        if ended:
            rows = going.rows.tolist()
            built = history.hypotheses(ended, [source_lengths[rows[position]] for position in ended], scoring)
            for position, hypothesis in zip(ended, built):
                hypotheses[rows[position]] = hypothesis
            keep = [position for position, token in enumerate(tokens) if token != EOS_ID]
            if not keep:
                break
            history.select(keep)
            index = torch.tensor(keep)
            going, memory, state, previous = going.select(index), memory.select(index), state.select(index), previous[index]
    return hypotheses  # type: ignore[return-value]  # every row ended: constrain forces </s> at its last step


def greedy(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
           prefix: torch.Tensor | None = None, scoring: Scoring = Scoring(),
           min_lengths: torch.Tensor | None = None, alternatives: int = 0,
           steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS,
           with_attention: bool = True, no_repeat_ngram: int = 0) -> list[Hypothesis]:
    """Most probable token (that repeats no ``no_repeat_ngram``-gram) at every step; one
    hypothesis per sentence."""
    return _decode_paths(model, source, lengths, max_lengths, prefix, lambda lp: lp.argmax(-1), scoring,
                         min_lengths, alternatives, steering, heads, with_attention, no_repeat_ngram)


def filter_for_sampling(log_probs: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Sampling distribution: log_probs [N, V] / temperature, keeping the top_k tokens (0 = all)
    and the smallest set whose probability reaches top_p (nucleus, Holtzman et al. 2020)."""
    scores = log_probs / temperature
    if top_k > 0 and top_k < scores.size(-1):
        kth = scores.topk(top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, NEG_INF)
    if top_p < 1.0:
        sorted_scores, order = scores.sort(dim=-1, descending=True)
        cumulative = sorted_scores.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_scores.softmax(-1) >= top_p  # keep the token that crosses top_p
        scores = scores.masked_fill(torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted), NEG_INF)
    return scores


def sample(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
           samples: int, temperature: float, top_k: int, top_p: float, generator: torch.Generator,
           prefix: torch.Tensor | None = None, scoring: Scoring = Scoring(),
           min_lengths: torch.Tensor | None = None, alternatives: int = 0,
           steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS,
           with_attention: bool = True, no_repeat_ngram: int = 0) -> list[list[Hypothesis]]:
    """``samples`` random outputs per sentence, best normalised score first.

    Tokens are drawn from the filtered, temperature-scaled distribution of those that repeat no
    ``no_repeat_ngram``-gram; the log-probabilities
    and scores reported are the model's own (temperature 1), so they compare across strategies.
    """

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        probabilities = filter_for_sampling(log_probs, temperature, top_k, top_p).softmax(-1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    index = torch.arange(source.size(0)).repeat_interleave(samples)
    hypotheses = _decode_paths(model, source[index], lengths[index], max_lengths[index],
                               None if prefix is None else prefix[index], choose, scoring,
                               None if min_lengths is None else min_lengths[index], alternatives,
                               None if steering is None else steering[index], heads,
                               with_attention or scoring.reads_attention, no_repeat_ngram)
    return [sorted(hypotheses[b * samples:(b + 1) * samples], key=lambda h: -h.normalized_score)
            for b in range(source.size(0))]


def best_candidates(scores: torch.Tensor, log_probs: torch.Tensor, k: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 2K best continuations of each sentence's K beams: scores [N*K] of the beams and
    log_probs [N*K, V] of their next pieces -> the candidates' scores, log-probabilities and
    indices parent_slot * V + piece, each [N, 2K], best first. In two stages, the 2K best of each
    beam and then the 2K best of those (every overall best is among its own beam's best): the
    same candidates as one top-k over [N, K*V], which took 87-92 us at one sentence against 56-59
    (timed alone, three rounds)."""
    width = min(2 * k, log_probs.size(1))
    values, pieces = log_probs.topk(width, dim=1)  # [N*K, W]
    best_scores, best = (scores.unsqueeze(1) + values).view(-1, k * width).topk(min(2 * k, k * width), dim=1)
    index = (best // width) * log_probs.size(1) + pieces.view(-1, k * width).gather(1, best)
    return best_scores, values.view(-1, k * width).gather(1, best), index


@torch.no_grad()
def beam_search(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                beam_size: int, nbest: int = 1, scoring: Scoring = Scoring(), no_repeat_ngram: int = 0,
                prefix: torch.Tensor | None = None, min_lengths: torch.Tensor | None = None,
                alternatives: int = 0, steering: torch.Tensor | None = None,
                heads: HeadSettings = NO_HEAD_SETTINGS, with_attention: bool = True
                ) -> tuple[list[list[Hypothesis]], list[list[BeamStep]]]:
    """Beam search over B sentences x K beams at once (rows n*K .. n*K+K-1 belong to the n-th
    sentence still searched: a sentence that is done leaves the batch, so the steps after it cost
    only the others).

    At each step the 2K best continuations of the K live beams are scored together; the K best
    that do not end are kept, and those among the K best that end with </s> are finished.
    A sentence stops only when it has ``nbest`` finished hypotheses and no live beam can still
    beat the nbest-th of them: a live score s <= 0 can at best become s / lp(max_length)
    (the coverage penalty is never positive, so it cannot lift a live beam above that).
    Returns, per sentence, up to ``nbest`` hypotheses (best normalised score first) and the trace.
    """
    batch, k = source.size(0), beam_size
    with_attention = with_attention or scoring.reads_attention
    memory, state = model.encode(source, lengths, heads=heads)
    going = Going.of(torch.arange(batch).repeat_interleave(k), max_lengths, prefix, min_lengths)  # rows b*K..b*K+K-1
    memory, state = memory.select(going.rows), state.select(going.rows)
    scores = torch.full((batch, k), NEG_INF)
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    previous = torch.full((batch * k,), BOS_ID, dtype=torch.long)
    history = PathHistory(slots=[])
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    traces: list[list[BeamStep]] = [[] for _ in range(batch)]
    best_possible_lp = [length_penalty(int(m), scoring.alpha) for m in max_lengths]
    source_lengths = lengths.tolist()

    for step in range(int(max_lengths.max())):
        sentences = going.rows[::k].tolist()  # the sentence of each group of K rows still searched
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory,
                                                     steering_at(steering, step, going.rows), with_attention)
        top_values, top_ids = top_alternatives(log_probs, alternatives) if alternatives else (None, None)  # [NK, A]
        if no_repeat_ngram > 0:
            log_probs = ban_repeated_ngrams(log_probs, history.token_paths(log_probs.size(0)), no_repeat_ngram,
                                            step, going.prefix)
        log_probs = constrain(log_probs, step, going.max_lengths, going.prefix, going.min_lengths)
        vocab = log_probs.size(1)
        candidate_scores, candidate_logprobs, candidate_index = (
            values.tolist() for values in best_candidates(scores, log_probs, k))  # each [N][2K]

        # The step's output rows: K live beams per sentence (row n*K + slot), then the candidates
        # that end here. Of the 2K best, those among the K best that end with </s> are finished,
        # the K best that do not end live on, and the other scored ones are pruned.
        outputs: list[tuple[int, int, float, int]] = []  # (parent row, token, log-prob, parent slot)
        live_scores: list[float] = []
        ending: list[tuple[int, int, float]] = []  # (n, parent slot, log-prob)
        kept: list[list[tuple[int, int, int, float]]] = []
        pruned: list[list[tuple[int, int, float]]] = [[] for _ in sentences]
        for n in range(len(sentences)):
            live: list[tuple[int, int, float, float]] = []  # slot by slot: (token, parent slot, score, log-prob)
            for rank, (score, logprob, candidate) in enumerate(zip(candidate_scores[n], candidate_logprobs[n],
                                                                    candidate_index[n])):
                if score == NEG_INF:
                    continue
                parent, token = divmod(candidate, vocab)
                if token == EOS_ID and rank < k:
                    ending.append((n, parent, logprob))
                elif token != EOS_ID and len(live) < k:
                    live.append((token, parent, score, logprob))
                else:
                    pruned[n].append((token, parent, score))
            kept.append([(slot, token, parent, score) for slot, (token, parent, score, _) in enumerate(live)])
            live += [(PAD_ID, 0, NEG_INF, NEG_INF)] * (k - len(live))  # dead beams, if any
            outputs += [(n * k + parent, token, logprob, parent) for token, parent, _, logprob in live]
            live_scores += [score for _, _, score, _ in live]
        outputs += [(n * k + parent, EOS_ID, logprob, parent) for n, parent, logprob in ending]
        parents, tokens, logprobs, slots = (list(column) for column in zip(*outputs))
        history.append(parents, tokens, logprobs, slots, alphas, top_values, top_ids)

        step_finished: list[list[tuple[int, float, float]]] = [[] for _ in sentences]
        ended = history.hypotheses(list(range(len(live_scores), len(tokens))),
                                   [source_lengths[sentences[n]] for n, _, _ in ending], scoring)
        for (n, parent, _), hypothesis in zip(ending, ended):
            finished[sentences[n]].append(hypothesis)
            step_finished[n].append((parent, hypothesis.score, hypothesis.normalized_score))
        still: list[int] = []  # the groups whose sentence is not done
        for n, b in enumerate(sentences):
            traces[b].append(BeamStep(step, kept[n], step_finished[n], pruned[n]))
            best_alive = live_scores[n * k]
            ranked = sorted((h.normalized_score for h in finished[b]), reverse=True)
            if not (best_alive == NEG_INF or (
                    len(ranked) >= nbest and ranked[nbest - 1] >= best_alive / best_possible_lp[b])):
                still.append(n)
        if not still:
            break

        # Every live row continues the prefix of its parent row; a done sentence's rows leave.
        rows = [n * k + slot for n in still for slot in range(k)]
        if len(still) < len(sentences):
            history.select(rows)
            index = torch.tensor(rows)
            going, memory = going.select(index), memory.select(index)
        state = state.select(torch.tensor([parents[row] for row in rows]))
        previous = torch.tensor([tokens[row] for row in rows])
        scores = torch.tensor([live_scores[row] for row in rows])

    results = [sorted(hyps, key=lambda h: -h.normalized_score)[:nbest] for hyps in finished]
    return results, traces


@torch.no_grad()
def force_decode(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]],
                 scoring: Scoring = Scoring(), alternatives: int = 0, heads: HeadSettings = NO_HEAD_SETTINGS
                 ) -> list[Hypothesis]:
    """Score given targets (ids ending in </s>) with one teacher-forced pass.

    Returns one hypothesis per sentence with the model's log-probability of each target token
    and the attention [target_len, source_len] the model computes while reading it.
    """
    if not targets or any(not target for target in targets):
        raise ValueError("force-decoding needs at least one target piece per sentence")
    width = max(len(t) for t in targets)
    target_in = torch.full((len(targets), width), PAD_ID, dtype=torch.long)
    for row, target in enumerate(targets):
        target_in[row, : len(target)] = torch.tensor([BOS_ID] + target[:-1])
    logits, alphas = model(source, lengths, target_in, heads=heads)
    logits = logits.float()
    logits[:, :, NEVER_OUTPUT] = NEG_INF
    log_probs = torch.log_softmax(logits, dim=-1)
    top_values, top_ids = top_alternatives(log_probs, alternatives)  # [B, T, A]
    return [make_hypothesis(list(target), log_probs[row, torch.arange(len(target)), torch.tensor(target)].tolist(),
                            None if alphas is None else alphas[row, : len(target)], int(lengths[row]), scoring,
                            top_values[row, : len(target)], top_ids[row, : len(target)])
            for row, target in enumerate(targets)]
