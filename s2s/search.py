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
    """How a finished hypothesis is ranked: length penalty ``alpha``, coverage penalty ``beta``."""

    alpha: float = 0.0
    beta: float = 0.0

    def normalize(self, score: float, length: int, attention: torch.Tensor | None) -> float:
        """score / lp(length) + cp(attention)."""
        return score / length_penalty(length, self.alpha) + coverage_penalty(attention, self.beta)


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
            attention = last_layer_average(attention)
    score = math.fsum(token_logprobs)
    return Hypothesis(
        ids=ids, token_logprobs=token_logprobs, score=score,
        normalized_score=scoring.normalize(score, len(ids), attention), attention=attention,
        finished=ids[-1:] == [EOS_ID], parent_slots=parent_slots or [], head_attention=head_attention,
        alternatives=[] if top_ids is None or top_ids.size(-1) == 0 else
        [list(zip(row_ids, row_values)) for row_ids, row_values in zip(top_ids.tolist(), top_values.tolist())])


@dataclasses.dataclass
class BeamHistory:
    """What each decoder row has emitted so far, one entry per step (R rows, t steps).

    tokens, logprobs [R, t]; parent_slots [R, t] or None (beam search's back-pointers);
    attention [R, t, S] or [R, t, layers, heads, S] or None; top_values, top_ids [R, t, A] (the model's top pieces, A may be
    0). Beam search calls ``reorder`` with each new row's parent row and then ``append`` with what
    the step chose, so row r always holds the whole path of the prefix in row r.
    """

    tokens: torch.Tensor
    logprobs: torch.Tensor
    parent_slots: torch.Tensor | None
    attention: torch.Tensor | None
    top_values: torch.Tensor
    top_ids: torch.Tensor

    @classmethod
    def empty(cls, rows: int, alternatives: int, with_slots: bool) -> "BeamHistory":
        return cls(tokens=torch.zeros(rows, 0, dtype=torch.long), logprobs=torch.zeros(rows, 0),
                   parent_slots=torch.zeros(rows, 0, dtype=torch.long) if with_slots else None, attention=None,
                   top_values=torch.zeros(rows, 0, alternatives), top_ids=torch.zeros(rows, 0, alternatives,
                                                                                      dtype=torch.long))

    def reorder(self, rows: torch.Tensor) -> "BeamHistory":
        """The histories of rows [R'] (each new row's parent row)."""
        return BeamHistory(self.tokens[rows], self.logprobs[rows],
                           None if self.parent_slots is None else self.parent_slots[rows],
                           None if self.attention is None else self.attention[rows],
                           self.top_values[rows], self.top_ids[rows])

    def append(self, tokens: torch.Tensor, logprobs: torch.Tensor, parent_slots: torch.Tensor | None,
               attention: torch.Tensor | None, top_values: torch.Tensor, top_ids: torch.Tensor) -> "BeamHistory":
        """One more step: tokens, logprobs, parent_slots [R]; attention [R, S] or [R, layers, heads, S]
        or None; top [R, A]."""
        def extend(history: torch.Tensor | None, step: torch.Tensor | None) -> torch.Tensor | None:
            if step is None:
                return None
            step = step.unsqueeze(1)
            return step if history is None else torch.cat([history, step], 1)

        return BeamHistory(extend(self.tokens, tokens), extend(self.logprobs, logprobs),
                           extend(self.parent_slots, parent_slots), extend(self.attention, attention),
                           extend(self.top_values, top_values), extend(self.top_ids, top_ids))

    def hypothesis(self, row: int, source_length: int, scoring: "Scoring") -> Hypothesis:
        """Row ``row`` as a hypothesis, cut after its first </s>."""
        ids = self.tokens[row].tolist()
        length = ids.index(EOS_ID) + 1 if EOS_ID in ids else len(ids)
        return make_hypothesis(
            ids[:length], self.logprobs[row, :length].tolist(),
            None if self.attention is None else self.attention[row, :length], source_length, scoring,
            self.top_values[row, :length], self.top_ids[row, :length],
            None if self.parent_slots is None else self.parent_slots[row, :length].tolist())


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
                      steer: torch.Tensor | None = None) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
    """One decoder step: previous [N] ids -> log-probs [N, V], state, cross-attention [N, S] (RNN)
    or [N, layers, heads, S] (Transformer) or None; ``steer`` [N, S] (NaN rows: the model's own
    attention) sets where it looks."""
    logits, state, alphas = model.step(previous.unsqueeze(1), state, memory,
                                       None if steer is None else steer.unsqueeze(1))
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


def ban_repeated_ngrams(log_probs: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid tokens that would repeat an n-gram already in ``history`` [N, t] (log_probs [N, V]).

    </s> is never banned, so a hypothesis can always end.
    """
    if n <= 0 or history.size(1) < n:
        return log_probs
    ngrams = history.unfold(1, n, 1)  # [N, t-n+1, n]
    current = history[:, history.size(1) - n + 1:]  # [N, n-1]
    matches = (ngrams[:, :, : n - 1] == current.unsqueeze(1)).all(-1)  # [N, t-n+1]
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
                  steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS) -> list[Hypothesis]:
    """Follow one path per row, picking each token with ``choose`` (log_probs [N, V] -> ids [N]).
    A row leaves the batch at its </s>: the next steps compute only the rows still going."""
    memory, state = model.encode(source, lengths, heads=heads)
    going = Going.of(torch.arange(source.size(0)), max_lengths, prefix, min_lengths)
    previous = torch.full((source.size(0),), BOS_ID, dtype=torch.long)
    history = BeamHistory.empty(source.size(0), alternatives, with_slots=False)
    hypotheses: list[Hypothesis | None] = [None] * source.size(0)
    for step in range(int(max_lengths.max())):
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory,
                                                     steering_at(steering, step, going.rows))
        top_values, top_ids = top_alternatives(log_probs, alternatives)
        log_probs = constrain(log_probs, step, going.max_lengths, going.prefix, going.min_lengths)
        previous = choose(log_probs)
        history = history.append(previous, log_probs.gather(1, previous.unsqueeze(1)).squeeze(1),
                                 None, alphas, top_values, top_ids)
        ended = previous == EOS_ID
        if bool(ended.any()):
            for position in ended.nonzero().squeeze(1).tolist():
                row = int(going.rows[position])
                hypotheses[row] = history.hypothesis(position, int(lengths[row]), scoring)
            keep = (~ended).nonzero().squeeze(1)
            if not keep.numel():
                break
            going, memory, state, history, previous = (going.select(keep), memory.select(keep), state.select(keep),
                                                       history.reorder(keep), previous[keep])
    return hypotheses  # type: ignore[return-value]  # every row ended: constrain forces </s> at its last step


def greedy(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
           prefix: torch.Tensor | None = None, scoring: Scoring = Scoring(),
           min_lengths: torch.Tensor | None = None, alternatives: int = 0,
           steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS) -> list[Hypothesis]:
    """Most probable token at every step; one hypothesis per sentence."""
    return _decode_paths(model, source, lengths, max_lengths, prefix, lambda lp: lp.argmax(-1), scoring,
                         min_lengths, alternatives, steering, heads)


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
           steering: torch.Tensor | None = None, heads: HeadSettings = NO_HEAD_SETTINGS) -> list[list[Hypothesis]]:
    """``samples`` random outputs per sentence, best normalised score first.

    Tokens are drawn from the filtered, temperature-scaled distribution; the log-probabilities
    and scores reported are the model's own (temperature 1), so they compare across strategies.
    """

    def choose(log_probs: torch.Tensor) -> torch.Tensor:
        probabilities = filter_for_sampling(log_probs, temperature, top_k, top_p).softmax(-1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    index = torch.arange(source.size(0)).repeat_interleave(samples)
    hypotheses = _decode_paths(model, source[index], lengths[index], max_lengths[index],
                               None if prefix is None else prefix[index], choose, scoring,
                               None if min_lengths is None else min_lengths[index], alternatives,
                               None if steering is None else steering[index], heads)
    return [sorted(hypotheses[b * samples:(b + 1) * samples], key=lambda h: -h.normalized_score)
            for b in range(source.size(0))]


@torch.no_grad()
def beam_search(model: EncoderDecoder, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                beam_size: int, nbest: int = 1, scoring: Scoring = Scoring(), no_repeat_ngram: int = 0,
                prefix: torch.Tensor | None = None, min_lengths: torch.Tensor | None = None,
                alternatives: int = 0, steering: torch.Tensor | None = None,
                heads: HeadSettings = NO_HEAD_SETTINGS) -> tuple[list[list[Hypothesis]], list[list[BeamStep]]]:
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
    memory, state = model.encode(source, lengths, heads=heads)
    going = Going.of(torch.arange(batch).repeat_interleave(k), max_lengths, prefix, min_lengths)  # rows b*K..b*K+K-1
    memory, state = memory.select(going.rows), state.select(going.rows)
    scores = torch.full((batch, k), NEG_INF)
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    previous = torch.full((batch * k,), BOS_ID, dtype=torch.long)
    history = BeamHistory.empty(batch * k, alternatives, with_slots=True)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    traces: list[list[BeamStep]] = [[] for _ in range(batch)]
    best_possible_lp = [length_penalty(int(m), scoring.alpha) for m in max_lengths]
    source_lengths = lengths.tolist()

    for step in range(int(max_lengths.max())):
        sentences = going.rows[::k].tolist()  # the sentence of each group of K rows still searched
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory,
                                                     steering_at(steering, step, going.rows))
        top_values, top_ids = top_alternatives(log_probs, alternatives)  # [NK, A]
        log_probs = ban_repeated_ngrams(log_probs, history.tokens, no_repeat_ngram)
        log_probs = constrain(log_probs, step, going.max_lengths, going.prefix, going.min_lengths)
        vocab = log_probs.size(1)
        candidates = (scores.unsqueeze(1) + log_probs).view(len(sentences), k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # [N, 2K]
        top_logprobs = log_probs.view(len(sentences), k * vocab).gather(1, top_index)
        parents, tokens = top_index // vocab, top_index % vocab
        ends = tokens == EOS_ID
        rank = torch.arange(top_index.size(1)).unsqueeze(0)
        finishing = ends & (rank < k) & (top_scores > NEG_INF)
        alive_scores, alive_position = top_scores.masked_fill(ends, NEG_INF).topk(k, dim=1)  # [N, K]
        alive_parents = parents.gather(1, alive_position)
        alive_tokens = tokens.gather(1, alive_position)

        # The candidates that end here: their prefix's history, then </s>.
        ending_n, ending_j = finishing.nonzero(as_tuple=True)
        ending_rows = ending_n * k + parents[ending_n, ending_j]
        ended = history.reorder(ending_rows).append(
            tokens[ending_n, ending_j], top_logprobs[ending_n, ending_j], parents[ending_n, ending_j],
            None if alphas is None else alphas[ending_rows], top_values[ending_rows], top_ids[ending_rows])
        step_finished: list[list[tuple[int, float, float]]] = [[] for _ in sentences]
        for i, (n, parent) in enumerate(zip(ending_n.tolist(), parents[ending_n, ending_j].tolist())):
            hypothesis = ended.hypothesis(i, source_lengths[sentences[n]], scoring)
            finished[sentences[n]].append(hypothesis)
            step_finished[n].append((parent, hypothesis.score, hypothesis.normalized_score))

        alive_list, parents_list, tokens_list = alive_scores.tolist(), alive_parents.tolist(), alive_tokens.tolist()
        kept_positions = torch.zeros_like(finishing).scatter(1, alive_position, alive_scores > NEG_INF)
        dropped = ~(kept_positions | (ends & (rank < k))) & (top_scores > NEG_INF)
        pruned: list[list[tuple[int, int, float]]] = [[] for _ in sentences]
        dropped_n, dropped_j = dropped.nonzero(as_tuple=True)
        for n, token, parent, score in zip(dropped_n.tolist(), tokens[dropped_n, dropped_j].tolist(),
                                           parents[dropped_n, dropped_j].tolist(),
                                           top_scores[dropped_n, dropped_j].tolist()):
            pruned[n].append((token, parent, score))
        still: list[int] = []  # the groups whose sentence is not done
        for n, b in enumerate(sentences):
            kept = [(slot, tokens_list[n][slot], parents_list[n][slot], alive_list[n][slot])
                    for slot in range(k) if alive_list[n][slot] > NEG_INF]
            traces[b].append(BeamStep(step, kept, step_finished[n], pruned[n]))
            best_alive = alive_list[n][0]
            ranked = sorted((h.normalized_score for h in finished[b]), reverse=True)
            if not (best_alive == NEG_INF or (
                    len(ranked) >= nbest and ranked[nbest - 1] >= best_alive / best_possible_lp[b])):
                still.append(n)
        if not still:
            break

        # Every live row continues the prefix of its parent row; a done sentence's rows leave.
        parent_rows = (torch.arange(len(sentences)).unsqueeze(1) * k + alive_parents).view(-1)
        chosen, chosen_logprobs = alive_tokens.view(-1), top_logprobs.gather(1, alive_position).view(-1)
        slots, scores = alive_parents.view(-1), alive_scores.view(-1)
        if len(still) < len(sentences):
            keep = (torch.tensor(still).unsqueeze(1) * k + torch.arange(k)).view(-1)
            going, memory = going.select(keep), memory.select(keep)
            parent_rows, chosen, chosen_logprobs, slots, scores = (
                parent_rows[keep], chosen[keep], chosen_logprobs[keep], slots[keep], scores[keep])
        history = history.reorder(parent_rows).append(
            chosen, chosen_logprobs, slots, None if alphas is None else alphas[parent_rows],
            top_values[parent_rows], top_ids[parent_rows])
        state = state.select(parent_rows)
        previous = chosen

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
