"""Saliency: how much each source piece matters to each output piece, by gradients (Captum).

Attention says where the decoder looked; whether that explains the output is a question
(Jain & Wallace 2019; Wiegreffe & Pinter 2019). A gradient-based attribution of the same
force-decoded output answers it another way, so the two can be put side by side.

For output piece t, the quantity explained is log p(y_t | y_<t, x) of the teacher-forced output,
and the inputs are the source embeddings [S, E]; an attribution per source piece is the sum of
its embedding's attributions. Methods (Captum):
- ``integrated_gradients`` (Sundararajan et al. 2017): from an all-zero embedding baseline in
  ``steps`` steps; the attributions of a row sum to log p(y_t | x) - log p(y_t | baseline), up
  to the integral's approximation error (returned as ``convergence``).
- ``input_x_gradient``: embedding x gradient, one backward pass per output piece.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import ModelConfig
from .model import EncoderDecoder, evaluating
from .search import NEVER_OUTPUT, NEG_INF
from .tokenizer import BOS_ID

METHODS = ("integrated_gradients", "input_x_gradient")
MAX_STEPS = 256
# Integrated gradients' steps: on en-fr's 15-word sentence the largest completeness error
# (convergence delta) was 1.2e-5 at 16 steps and 1.1e-5 at 32 (8.4e-3 at 8), so 16 lose nothing.
DEFAULT_STEPS = 16
DEFAULT_MEMORY_BUDGET = 512 * 2**20  # bytes one request (a search or a saliency question) may hold at once
# The most work one saliency request may ask for, in attributed examples (output pieces x steps)
# times the pieces each reads (source + output): the time of one request is bounded before it
# starts. Not timed directly: a probe of the server issue (en-fr, 40 words at 256 steps, about
# 1.3 million of these units) ran 177 s, so 150,000 is about 20 s at that rate; the default 16
# steps of a 40-word sentence stay under it.
MAX_SALIENCY_WORK = 150_000


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each row of a and b [T, S] -> [T] (ties ranked by position;
    0 for a row of one column)."""
    if a.size(-1) < 2:
        return torch.zeros(a.size(0))
    ranks_a = a.argsort(-1).argsort(-1).float()
    ranks_b = b.argsort(-1).argsort(-1).float()
    ranks_a = ranks_a - ranks_a.mean(-1, keepdim=True)
    ranks_b = ranks_b - ranks_b.mean(-1, keepdim=True)
    return (ranks_a * ranks_b).sum(-1) / (ranks_a.norm(dim=-1) * ranks_b.norm(dim=-1))


def example_bytes(config: ModelConfig, source_length: int, target_length: int) -> int:
    """An upper bound on the memory one attributed example (one output piece at one integration
    step) holds during the forward and backward pass, in bytes: the activations autograd keeps,
    counted by layer, times a margin for gradients and allocator slack. The bulk is additive
    attention's [T, S, Hd] energies (a Transformer's: its per-head weights and feed-forward
    activations); the output layer is read at one position only."""
    t, s = target_length, source_length
    e, he, hd, v = config.embedding_dim, config.encoder_hidden, config.decoder_hidden, config.vocab_size
    if config.arch == "transformer":  # per layer: the sublayers' inputs, d_ff activations, the weights
        h, ff = config.attention_heads, config.feedforward_dim
        floats = config.encoder_layers * s * (12 * e + 2 * ff + 3 * h * s)
        floats += config.decoder_layers * t * (18 * e + 2 * ff + 3 * h * (t + s)) + config.decoder_layers * s * 2 * e
        return (floats + v * 3) * 4 * 3
    floats = s * (e + 2 * he) * 4 * config.encoder_layers  # encoder: inputs, states, gates
    floats += t * (e + 4 * hd) * config.decoder_layers + t * (hd + 2 * he + e) * 2  # decoder RNN, combine
    if config.attention == "bahdanau":
        floats += t * s * hd * 3  # query + key sums, tanh, their gradients
    if config.attention != "none":
        floats += t * s * 4 + s * hd
    floats += v * 3  # one position's logits, softmax and gradient
    return floats * 4 * 3


def _log_prob_at(model: EncoderDecoder) -> Any:
    def log_prob(embedded: torch.Tensor, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor,
                 positions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """embedded [N, S, E] -> log p(targets[n] | target_in[n, :positions[n] + 1], source) [N]:
        each example explains one output piece, so only its position goes through the output
        layer (N x V values, not N x T x V)."""
        last = int(positions.max()) + 1
        states, _ = model.teacher_forced_states(source, lengths, target_in[:, :last], source_embeddings=embedded)
        rows = torch.arange(states.size(0))
        logits = model.decoder.logits(states[rows, positions]).float()  # [N, V]
        logits[:, NEVER_OUTPUT] = NEG_INF
        return torch.log_softmax(logits, dim=-1)[rows, targets]

    return log_prob


def saliency_work(source_length: int, target_length: int, method: str, steps: int) -> int:
    """The work ``MAX_SALIENCY_WORK`` bounds: examples x (source + output pieces)."""
    examples = target_length * (steps if method == "integrated_gradients" else 1)
    return examples * (source_length + target_length)


def check_work(source_length: int, target_length: int, method: str, steps: int) -> None:
    """Refuse, before any work, an unknown method, steps out of range, or more than
    ``MAX_SALIENCY_WORK``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [2, {MAX_STEPS}], got {steps!r}")
    work = saliency_work(source_length, target_length, method, steps)
    if work > MAX_SALIENCY_WORK:
        raise ValueError(f"saliency of {target_length} output pieces over {source_length} source pieces at {steps} "
                         f"steps is {work:,} units of work; this server does at most {MAX_SALIENCY_WORK:,} per request "
                         "(examples x pieces): use fewer steps, input_x_gradient, or a shorter sentence")


def source_saliency(model: EncoderDecoder, source_ids: list[int], target_ids: list[int],
                    method: str = "integrated_gradients", steps: int = DEFAULT_STEPS,
                    memory_budget: int = DEFAULT_MEMORY_BUDGET) -> dict[str, torch.Tensor]:
    """Attributions of each target piece to each source piece.

    source_ids [S] (ending in </s>), target_ids [T] -> ``signed`` [T, S] (positive: the piece
    raises the output piece's log-probability), ``relevance`` [T, S] (|signed| normalised to sum
    to 1 per row) and, for integrated gradients, ``convergence`` [T] (the completeness error).
    A request over ``MAX_SALIENCY_WORK`` is refused before any work starts. The (output piece,
    step) examples run in chunks whose estimated memory (``example_bytes``)
    stays within ``memory_budget`` bytes; a sentence whose one example would exceed it is refused
    with a ValueError before any work starts.
    """
    if not source_ids or not target_ids:
        raise ValueError("saliency needs a source and an output")
    check_work(len(source_ids), len(target_ids), method, steps)
    per_example = example_bytes(model.config, len(source_ids), len(target_ids))
    chunk = memory_budget // per_example  # examples per forward/backward pass
    if chunk < 1:
        raise ValueError(f"saliency of a {len(source_ids)}-piece sentence with a {len(target_ids)}-piece output "
                         f"needs about {per_example / 2**20:.0f} MB per example, over the budget of "
                         f"{memory_budget / 2**20:.0f} MB: shorten the sentence")
    from captum.attr import InputXGradient, IntegratedGradients  # here: importing captum costs ~1 s of start-up

    signed_rows, convergence_rows = [], []
    # Output pieces attributed together, in order: as many as fit one pass with all their steps, so
    # each pass runs the decoder only up to its last piece (early pieces need a short prefix).
    rows_per_call = max(1, min(len(target_ids), chunk // (steps if method == "integrated_gradients" else 1)))
    with evaluating(model), torch.enable_grad():
        for first in range(0, len(target_ids), rows_per_call):
            positions = torch.arange(first, min(first + rows_per_call, len(target_ids)))
            count = positions.numel()
            source = torch.tensor([source_ids]).expand(count, -1)
            arguments = (source, torch.full((count,), len(source_ids)),
                         torch.tensor([[BOS_ID] + target_ids[:-1]]).expand(count, -1), positions,
                         torch.tensor(target_ids)[positions])
            embedded = model.encoder.embedding(source).detach().requires_grad_()
            forward = _log_prob_at(model)
            if method == "integrated_gradients":
                attribution, delta = IntegratedGradients(forward).attribute(
                    embedded, baselines=torch.zeros_like(embedded), additional_forward_args=arguments,
                    n_steps=steps, internal_batch_size=max(count, chunk), return_convergence_delta=True)
                convergence_rows.append(delta.detach().abs())
            else:
                attribution = InputXGradient(forward).attribute(embedded, additional_forward_args=arguments)
            signed_rows.append(attribution.sum(-1).detach())  # row t explains output piece t
    signed = torch.cat(signed_rows)  # [T, S]
    magnitude = signed.abs()
    relevance = magnitude / magnitude.sum(-1, keepdim=True).clamp(min=1e-12)
    result = {"signed": signed, "relevance": relevance}
    if convergence_rows:
        result["convergence"] = torch.cat(convergence_rows)
    return result
