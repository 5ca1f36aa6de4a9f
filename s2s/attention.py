"""Attention scoring functions over encoder states.

Notation of "The Annotated Encoder-Decoder": a ``query`` (decoder state s_t) scores each
``key`` (encoder state h_j); ``alphas`` = softmax over real source positions; the
``context`` c_t = sum_j alphas_tj * value_j.

- ``bahdanau`` (additive, Bahdanau et al. 2015, Section A.1.2):  v^T tanh(W_q s_t + W_k h_j)
- ``luong-general`` (Luong et al. 2015, Section 3.1):            s_t^T W_a h_j
- ``luong-dot`` (Luong et al. 2015, Section 3.1):                s_t^T h_j  (needs equal sizes)

The module holds no state between calls: keys are projected once per source batch by
``project_keys`` and handed back to ``forward`` by the caller.
"""

from __future__ import annotations

import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, kind: str, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":
            self.key_layer = nn.Linear(key_dim, query_dim, bias=False)
            self.query_layer = nn.Linear(query_dim, query_dim, bias=False)
            self.energy_layer = nn.Linear(query_dim, 1, bias=False)
        elif kind == "luong-general":
            self.key_layer = nn.Linear(key_dim, query_dim, bias=False)
        elif kind == "luong-dot":
            if key_dim != query_dim:
                raise ValueError(f"luong-dot attention needs decoder_hidden == 2 * encoder_hidden "
                                 f"(got {query_dim} and {key_dim})")
        else:
            raise ValueError(f"unknown attention type {kind!r}")

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys [B, S, key_dim] -> projected keys [B, S, query_dim] (identity for luong-dot)."""
        return keys if self.kind == "luong-dot" else self.key_layer(keys)

    def forward(self, query: torch.Tensor, projected_keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor, steer: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from every query step to the source.

        query [B, T, Q], projected_keys [B, S, Q], values [B, S, K], mask [B, S] (True = real token)
        -> context [B, T, K], alphas [B, T, S] (rows sum to 1 over real tokens, 0 on padding).
        ``steer`` [B, T, S] replaces the alphas of every row that is not NaN (a person setting
        where the decoder looks); the context is then computed from the replaced weights.
        """
        if self.kind == "bahdanau":
            energies = torch.tanh(self.query_layer(query).unsqueeze(2) + projected_keys.unsqueeze(1))
            scores = self.energy_layer(energies).squeeze(-1)
        else:
            scores = torch.bmm(query, projected_keys.transpose(1, 2))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        alphas = torch.softmax(scores, dim=-1)
        if steer is not None:
            alphas = torch.where(steer[..., :1].isnan(), alphas, steer)
        return torch.bmm(alphas, values), alphas
