"""Orientation-aware matching: cosine of a ground descriptor against satellite descriptors.

A satellite descriptor map (B, N d, h, w) holds, at each cell, N slots of d channels
(channel j d + k is slot j, channel k). Orientation o compares satellite slot j with ground
slot (j + o) mod N, i.e. the ground descriptor rolled by -o slots. Orientation 0 is the
alignment the model is trained on (north-aligned panoramas, yaw pi / 2); orientation o
corresponds to a camera yaw of pi / 2 + o * 2 pi / N (counter-clockwise, map frame):
geometry.roll_panorama by one slot rolls the ground descriptor by +1 slot and moves the
best orientation from o to o + 1.

Hidden slots (ground-visibility mask) are excluded from the dot product and from both
norms, so the score is the cosine over the visible slots only.
"""
from __future__ import annotations

import torch


def rolled_slot_index(n_slots: int, device=None) -> torch.Tensor:
    """(N, N) long: index[o, j] = (j + o) mod N, the ground slot matched to satellite slot j."""
    slots = torch.arange(n_slots, device=device)
    return torch.remainder(slots.view(1, -1) + slots.view(-1, 1), n_slots)


def orientation_cosine(sat_descriptors: torch.Tensor, ground_descriptor: torch.Tensor,
                       slot_visible: torch.Tensor | None = None,
                       eps: float = 1e-6) -> torch.Tensor:
    """Masked cosine similarity for every cell and orientation.

    sat_descriptors: (B, N d, h, w) slot-major satellite descriptors.
    ground_descriptor: (B, N, d).
    slot_visible: optional (B, N) bool, True = the ground slot is visible.
    Returns (B, N, h, w): score[b, o, i, j] in [-1, 1] (0 where nothing is visible).
    """
    if ground_descriptor.dim() != 3:
        raise ValueError(f'ground_descriptor must be (B, N, d), '
                         f'got {tuple(ground_descriptor.shape)}')
    B, N, d = ground_descriptor.shape
    if sat_descriptors.dim() != 4 or sat_descriptors.shape[:2] != (B, N * d):
        raise ValueError(f'sat_descriptors must be (B, N d, h, w) = ({B}, {N * d}, h, w) for '
                         f'ground (B, N, d) = {tuple(ground_descriptor.shape)}, '
                         f'got {tuple(sat_descriptors.shape)}')
    h, w = sat_descriptors.shape[-2:]
    index = rolled_slot_index(N, ground_descriptor.device)
    if slot_visible is None:
        weight = ground_descriptor.new_ones(B, N)
    else:
        if slot_visible.shape != (B, N):
            raise ValueError(f'slot_visible must be (B, N) = ({B}, {N}), '
                             f'got {tuple(slot_visible.shape)}')
        weight = slot_visible.to(ground_descriptor.dtype)
    masked = ground_descriptor * weight.unsqueeze(-1)  # hidden slots -> 0
    rolled = masked[:, index]  # (B, O, N, d): rolled[:, o, j] = masked[:, (j + o) mod N]
    weight_rolled = weight[:, index]  # (B, O, N)
    sat = sat_descriptors.reshape(B, N * d, h * w)
    dot = torch.bmm(rolled.reshape(B, N, N * d), sat)  # (B, O, h w)
    sat_sq = sat.reshape(B, N, d, h * w).square().sum(dim=2)  # (B, N, h w)
    sat_norm = torch.sqrt(torch.bmm(weight_rolled, sat_sq) + eps * eps)  # (B, O, h w)
    ground_norm = torch.sqrt(masked.square().sum(dim=(1, 2)) + eps * eps).view(B, 1, 1)
    return (dot / (sat_norm * ground_norm)).view(B, N, h, w)
