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
from captum.attr import InputXGradient, IntegratedGradients

from .model import Seq2Seq
from .search import NEVER_OUTPUT, NEG_INF
from .tokenizer import BOS_ID

METHODS = ("integrated_gradients", "input_x_gradient")
MAX_STEPS = 256


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


def _target_log_probs(model: Seq2Seq) -> Any:
    def log_probs(embedded: torch.Tensor, source: torch.Tensor, lengths: torch.Tensor, target_in: torch.Tensor,
                  targets: torch.Tensor) -> torch.Tensor:
        """embedded [N, S, E] -> log-probability of each target piece [N, T] (teacher-forced)."""
        logits, _ = model(source, lengths, target_in, source_embeddings=embedded)
        logits = logits.float()
        logits[:, :, NEVER_OUTPUT] = NEG_INF
        return torch.log_softmax(logits, dim=-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)

    return log_probs


def source_saliency(model: Seq2Seq, source_ids: list[int], target_ids: list[int],
                    method: str = "integrated_gradients", steps: int = 32) -> dict[str, torch.Tensor]:
    """Attributions of each target piece to each source piece.

    source_ids [S] (ending in </s>), target_ids [T] -> ``signed`` [T, S] (positive: the piece
    raises the output piece's log-probability), ``relevance`` [T, S] (|signed| normalised to sum
    to 1 per row) and, for integrated gradients, ``convergence`` [T] (the completeness error).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 2 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [2, {MAX_STEPS}], got {steps!r}")
    if not source_ids or not target_ids:
        raise ValueError("saliency needs a source and an output")
    was_training = model.training
    model.eval()
    # One example per output piece, each explaining its own piece: all rows in one batched call.
    count = len(target_ids)
    source = torch.tensor([source_ids]).expand(count, -1)
    lengths = torch.full((count,), len(source_ids))
    targets = torch.tensor([target_ids]).expand(count, -1)
    target_in = torch.tensor([[BOS_ID] + target_ids[:-1]]).expand(count, -1)
    embedded = model.encoder.embedding(source).detach().requires_grad_()
    forward = _target_log_probs(model)
    arguments = (source, lengths, target_in, targets)
    convergence = None
    try:
        with torch.enable_grad():
            if method == "integrated_gradients":
                attribution, delta = IntegratedGradients(forward).attribute(
                    embedded, baselines=torch.zeros_like(embedded), target=list(range(count)),
                    additional_forward_args=arguments, n_steps=steps, return_convergence_delta=True)
                convergence = delta.detach().abs()
            else:
                attribution = InputXGradient(forward).attribute(embedded, target=list(range(count)),
                                                                additional_forward_args=arguments)
    finally:
        model.train(was_training)
    signed = attribution.sum(-1).detach()  # [T, S]: row t explains output piece t
    magnitude = signed.abs()
    relevance = magnitude / magnitude.sum(-1, keepdim=True).clamp(min=1e-12)
    result = {"signed": signed, "relevance": relevance}
    if convergence is not None:
        result["convergence"] = convergence
    return result
