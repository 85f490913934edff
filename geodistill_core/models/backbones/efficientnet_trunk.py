"""EfficientNetTrunk: a timm EfficientNet without its classifier, returning every stage."""
from __future__ import annotations

import torch
from torch import nn

EFFICIENTNET_STRIDES_PX = (2, 4, 8, 16, 16, 32, 32, 32)


class EfficientNetTrunk(nn.Module):
    """Wraps a timm `EfficientNet` (built with num_classes=0) as a multi-level extractor.

    Levels: the output of each of the 7 stages (strides 2, 4, 8, 16, 16, 32, 32), then the
    1x1 head conv + BN + activation (stride 32). All parameters take part in the output.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if not isinstance(net.classifier, nn.Identity):
            raise ValueError('build the timm EfficientNet with num_classes=0')
        self.net = net

    def truncate(self, n_levels: int) -> EfficientNetTrunk:
        """Keep only the first n_levels outputs (drops the deeper stages and their weights:
        a model using levels 1/4 and 1/8 keeps about 2% of the parameters). In place."""
        n_total = len(self.net.blocks) + 1
        if not 1 <= n_levels <= n_total:
            raise ValueError(f'n_levels must be in [1, {n_total}], got {n_levels}')
        if n_levels < n_total:
            self.net.blocks = self.net.blocks[:n_levels]
            self.net.conv_head = None
            self.net.bn2 = None
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) preprocessed, H and W multiples of 32.

        Returns 8 maps (B, C_l, H / s_l, W / s_l) with s = (2, 4, 8, 16, 16, 32, 32, 32)
        (only the first n after truncate(n)).
        """
        x = self.net.bn1(self.net.conv_stem(images))
        levels = []
        for stage in self.net.blocks:
            x = stage(x)
            levels.append(x)
        if self.net.conv_head is not None:
            levels.append(self.net.bn2(self.net.conv_head(x)))
        return levels

