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
from typing import Callable

import torch

from .model import EncoderMemory, RNNState, Seq2Seq, select_state
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
    (None for a model without attention); ``beam_path`` holds, for beam search, the beam slot
    of each prefix of this hypothesis at steps 0..len(ids)-2 (see ``BeamStep``); ``alternatives``
    holds, at each position, the model's top pieces as (id, log-probability), best first."""

    ids: list[int]
    token_logprobs: list[float]
    score: float
    normalized_score: float
    attention: torch.Tensor | None
    finished: bool
    beam_path: list[int] = dataclasses.field(default_factory=list)
    alternatives: list[list[tuple[int, float]]] = dataclasses.field(default_factory=list)


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


def decoder_log_probs(model: Seq2Seq, previous: torch.Tensor, state: RNNState, memory: EncoderMemory,
                      steer: torch.Tensor | None = None) -> tuple[torch.Tensor, RNNState, torch.Tensor | None]:
    """One decoder step: previous [N] ids -> log-probs [N, V], state, alphas [N, S] or None;
    ``steer`` [N, S] (NaN rows: the model's own attention) sets where it looks."""
    logits, state, alphas = model.decoder(previous.unsqueeze(1), state, memory,
                                          None if steer is None else steer.unsqueeze(1))
    logits = logits[:, -1].float()
    logits[:, NEVER_OUTPUT] = NEG_INF
    return torch.log_softmax(logits, dim=-1), state, None if alphas is None else alphas[:, -1]


def top_alternatives(log_probs: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` most probable pieces of log_probs [..., V]: (log-probs, ids), each [..., count]."""
    return log_probs.topk(min(count, log_probs.size(-1)), dim=-1)


def _alternative_lists(values: torch.Tensor, ids: torch.Tensor) -> list[list[tuple[int, float]]]:
    """values, ids [T, A] -> per position, [(id, log-probability)] best first."""
    return [list(zip(row_ids, row_values)) for row_ids, row_values in zip(ids.tolist(), values.tolist())]


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


def _unpadded_attention(alphas: torch.Tensor | None, source_length: int) -> torch.Tensor | None:
    return None if alphas is None else alphas[:, :source_length].clone()


Chooser = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def _decode_paths(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                  prefix: torch.Tensor | None, choose: Chooser, scoring: Scoring,
                  min_lengths: torch.Tensor | None, alternatives: int,
                  steering: torch.Tensor | None = None) -> list[Hypothesis]:
    """Follow one path per row, picking each token with ``choose`` (log_probs [N, V] -> ids [N])."""
    memory, state = model.encode(source, lengths)
    rows = source.size(0)
    previous = torch.full((rows,), BOS_ID, dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    tokens, logprobs, attention, top_values, top_ids = [], [], [], [], []
    for step in range(int(max_lengths.max())):
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory, steering_at(steering, step))
        if alternatives:
            values, ids = top_alternatives(log_probs, alternatives)
            top_values.append(values)
            top_ids.append(ids)
        log_probs = constrain(log_probs, step, max_lengths, prefix, min_lengths)
        chosen = choose(log_probs)
        tokens.append(torch.where(done, PAD_ID, chosen))
        logprobs.append(log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1))
        if alphas is not None:
            attention.append(alphas)
        done |= chosen == EOS_ID
        if bool(done.all()):
            break
        previous = chosen
    ids = torch.stack(tokens, 1).tolist()
    token_logprobs = torch.stack(logprobs, 1).tolist()
    stacked = torch.stack(attention, 1) if attention else None  # [N, T, S]
    stacked_values = torch.stack(top_values, 1) if top_values else None  # [N, T, A]
    stacked_ids = torch.stack(top_ids, 1) if top_ids else None
    hypotheses = []
    for row in range(rows):
        length = ids[row].index(EOS_ID) + 1
        row_logprobs = token_logprobs[row][:length]
        score = math.fsum(row_logprobs)
        attention = None if stacked is None else _unpadded_attention(stacked[row, :length], int(lengths[row]))
        hypotheses.append(Hypothesis(
            ids=ids[row][:length], token_logprobs=row_logprobs, score=score,
            normalized_score=scoring.normalize(score, length, attention), attention=attention, finished=True,
            alternatives=[] if stacked_ids is None else
            _alternative_lists(stacked_values[row, :length], stacked_ids[row, :length]),
        ))
    return hypotheses


def greedy(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
           prefix: torch.Tensor | None = None, scoring: Scoring = Scoring(),
           min_lengths: torch.Tensor | None = None, alternatives: int = 0,
           steering: torch.Tensor | None = None) -> list[Hypothesis]:
    """Most probable token at every step; one hypothesis per sentence."""
    return _decode_paths(model, source, lengths, max_lengths, prefix, lambda lp: lp.argmax(-1), scoring,
                         min_lengths, alternatives, steering)


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


def sample(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
           samples: int, temperature: float, top_k: int, top_p: float, generator: torch.Generator,
           prefix: torch.Tensor | None = None, scoring: Scoring = Scoring(),
           min_lengths: torch.Tensor | None = None, alternatives: int = 0,
           steering: torch.Tensor | None = None) -> list[list[Hypothesis]]:
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
                               None if steering is None else steering[index])
    return [sorted(hypotheses[b * samples:(b + 1) * samples], key=lambda h: -h.normalized_score)
            for b in range(source.size(0))]


@torch.no_grad()
def beam_search(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor, max_lengths: torch.Tensor,
                beam_size: int, nbest: int = 1, scoring: Scoring = Scoring(), no_repeat_ngram: int = 0,
                prefix: torch.Tensor | None = None, min_lengths: torch.Tensor | None = None,
                alternatives: int = 0, steering: torch.Tensor | None = None
                ) -> tuple[list[list[Hypothesis]], list[list[BeamStep]]]:
    """Beam search over B sentences x K beams at once (rows b*K .. b*K+K-1 belong to sentence b).

    At each step the 2K best continuations of the K live beams are scored together; the K best
    that do not end are kept, and those among the K best that end with </s> are finished.
    A sentence stops only when it has ``nbest`` finished hypotheses and no live beam can still
    beat the nbest-th of them: a live score s <= 0 can at best become s / lp(max_length)
    (the coverage penalty is never positive, so it cannot lift a live beam above that).
    Returns, per sentence, up to ``nbest`` hypotheses (best normalised score first) and the trace.
    """
    batch, k = source.size(0), beam_size
    memory, state = model.encode(source, lengths)
    rows = torch.arange(batch).repeat_interleave(k)  # sentence of each beam row
    memory, state = memory.select(rows), select_state(state, rows)
    row_max_lengths = max_lengths[rows]
    row_prefix = None if prefix is None else prefix[rows]
    row_min_lengths = None if min_lengths is None else min_lengths[rows]
    scores = torch.full((batch, k), NEG_INF)
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    previous = torch.full((batch * k,), BOS_ID, dtype=torch.long)
    history = torch.zeros(batch * k, 0, dtype=torch.long)
    logprob_history = torch.zeros(batch * k, 0)
    slot_history = torch.zeros(batch * k, 0, dtype=torch.long)
    attention_history: torch.Tensor | None = None
    top_values_history = torch.zeros(batch * k, 0, alternatives)  # [BK, t, A]
    top_ids_history = torch.zeros(batch * k, 0, alternatives, dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    traces: list[list[BeamStep]] = [[] for _ in range(batch)]
    done = [False] * batch
    best_possible_lp = [length_penalty(int(m), scoring.alpha) for m in max_lengths]
    row_offsets = (torch.arange(batch) * k).unsqueeze(1)  # [B, 1]

    for step in range(int(max_lengths.max())):
        log_probs, state, alphas = decoder_log_probs(model, previous, state, memory,
                                                     steering_at(steering, step, rows))
        top_values, top_ids = top_alternatives(log_probs, alternatives)  # [BK, A]
        log_probs = ban_repeated_ngrams(log_probs, history, no_repeat_ngram)
        log_probs = constrain(log_probs, step, row_max_lengths, row_prefix, row_min_lengths)
        vocab = log_probs.size(1)
        candidates = (scores.unsqueeze(1) + log_probs).view(batch, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # [B, 2K]
        top_logprobs = log_probs.view(batch, k * vocab).gather(1, top_index)
        parents, tokens = top_index // vocab, top_index % vocab
        ends = tokens == EOS_ID
        rank = torch.arange(top_index.size(1)).unsqueeze(0)
        finishing = ends & (rank < k) & (top_scores > NEG_INF)
        alive_scores, alive_position = top_scores.masked_fill(ends, NEG_INF).topk(k, dim=1)  # [B, K]
        alive_parents = parents.gather(1, alive_position)
        alive_tokens = tokens.gather(1, alive_position)
        parent_rows = (row_offsets + alive_parents).view(-1)

        step_finished: list[list[tuple[int, float, float]]] = [[] for _ in range(batch)]
        for b, j in finishing.nonzero().tolist():
            if done[b]:
                continue
            parent = int(parents[b, j])
            row = b * k + parent
            ids = history[row].tolist() + [EOS_ID]
            score = float(top_scores[b, j])
            attention = None
            if alphas is not None:
                path = alphas[row].unsqueeze(0) if attention_history is None else \
                    torch.cat([attention_history[row], alphas[row].unsqueeze(0)])
                attention = _unpadded_attention(path, int(lengths[b]))
            normalized = scoring.normalize(score, len(ids), attention)
            finished[b].append(Hypothesis(
                ids=ids, token_logprobs=logprob_history[row].tolist() + [float(top_logprobs[b, j])],
                score=score, normalized_score=normalized, attention=attention, finished=True,
                beam_path=slot_history[row].tolist() + [parent],
                alternatives=_alternative_lists(torch.cat([top_values_history[row], top_values[row:row + 1]]),
                                                torch.cat([top_ids_history[row], top_ids[row:row + 1]]))))
            step_finished[b].append((parent, score, normalized))

        alive_list, parents_list, tokens_list = alive_scores.tolist(), alive_parents.tolist(), alive_tokens.tolist()
        kept_positions = torch.zeros_like(finishing).scatter(1, alive_position, alive_scores > NEG_INF)
        dropped = ~(kept_positions | finishing) & (top_scores > NEG_INF)
        pruned: list[list[tuple[int, int, float]]] = [[] for _ in range(batch)]
        for b, j in dropped.nonzero().tolist():
            pruned[b].append((int(tokens[b, j]), int(parents[b, j]), float(top_scores[b, j])))
        for b in range(batch):
            if done[b]:
                continue
            kept = [(slot, tokens_list[b][slot], parents_list[b][slot], alive_list[b][slot])
                    for slot in range(k) if alive_list[b][slot] > NEG_INF]
            traces[b].append(BeamStep(step, kept, step_finished[b], pruned[b]))

        # Reorder every history along the back-pointers, then append this step.
        alive_logprobs = top_logprobs.gather(1, alive_position).view(-1, 1)
        history = torch.cat([history[parent_rows], alive_tokens.view(-1, 1)], 1)
        logprob_history = torch.cat([logprob_history[parent_rows], alive_logprobs], 1)
        slot_history = torch.cat([slot_history[parent_rows], alive_parents.view(-1, 1)], 1)
        top_values_history = torch.cat([top_values_history[parent_rows], top_values[parent_rows].unsqueeze(1)], 1)
        top_ids_history = torch.cat([top_ids_history[parent_rows], top_ids[parent_rows].unsqueeze(1)], 1)
        if alphas is not None:
            step_attention = alphas[parent_rows].unsqueeze(1)
            attention_history = step_attention if attention_history is None else \
                torch.cat([attention_history[parent_rows], step_attention], 1)
        state = select_state(state, parent_rows)
        scores = alive_scores.view(-1).clone()
        previous = alive_tokens.view(-1)

        for b in range(batch):
            if done[b]:
                continue
            best_alive = alive_list[b][0]
            ranked = sorted((h.normalized_score for h in finished[b]), reverse=True)
            if best_alive == NEG_INF or (
                    len(ranked) >= nbest and ranked[nbest - 1] >= best_alive / best_possible_lp[b]):
                done[b] = True
        if all(done):
            break
        finished_rows = torch.tensor(done).repeat_interleave(k)
        scores = scores.masked_fill(finished_rows, NEG_INF)

    results = [sorted(hyps, key=lambda h: -h.normalized_score)[:nbest] for hyps in finished]
    return results, traces


@torch.no_grad()
def force_decode(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor, targets: list[list[int]],
                 scoring: Scoring = Scoring(), alternatives: int = 0) -> list[Hypothesis]:
    """Score given targets (ids ending in </s>) with one teacher-forced pass.

    Returns one hypothesis per sentence with the model's log-probability of each target token
    and the attention [target_len, source_len] the model computes while reading it.
    """
    width = max(len(t) for t in targets)
    target_in = torch.full((len(targets), width), PAD_ID, dtype=torch.long)
    for row, target in enumerate(targets):
        target_in[row, : len(target)] = torch.tensor([BOS_ID] + target[:-1])
    logits, alphas = model(source, lengths, target_in)
    logits = logits.float()
    logits[:, :, NEVER_OUTPUT] = NEG_INF
    log_probs = torch.log_softmax(logits, dim=-1)
    top_values, top_ids = top_alternatives(log_probs, alternatives)  # [B, T, A]
    hypotheses = []
    for row, target in enumerate(targets):
        token_logprobs = log_probs[row, torch.arange(len(target)), torch.tensor(target)].tolist()
        score = math.fsum(token_logprobs)
        attention = None if alphas is None else _unpadded_attention(alphas[row, : len(target)], int(lengths[row]))
        hypotheses.append(Hypothesis(
            ids=list(target), token_logprobs=token_logprobs, score=score,
            normalized_score=scoring.normalize(score, len(target), attention), attention=attention,
            finished=bool(target) and target[-1] == EOS_ID,
            alternatives=_alternative_lists(top_values[row, : len(target)], top_ids[row, : len(target)])
            if alternatives else [],
        ))
    return hypotheses
