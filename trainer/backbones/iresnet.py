"""Improved ResNet (IResNet, "LResNet-E-IR" in the ArcFace paper) for 112x112 face crops.

The ArcFace paper's changes to a ResNet: a stride-1 3x3 stem (faces are small), BN-Conv-BN-PReLU-Conv-BN
residual units, and an "E" output block (BN, dropout, fully connected, BN) that keeps spatial layout
in the embedding instead of global pooling. The final BatchNorm has no learned scale because the
ArcFace head normalises the embedding anyway.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin, eps=1e-5),
            _conv3x3(cin, cout),
            nn.BatchNorm2d(cout, eps=1e-5),
            nn.PReLU(cout),
            _conv3x3(cout, cout, stride),
            nn.BatchNorm2d(cout, eps=1e-5),
        )
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.body(x) + identity


class IResNet(nn.Module):
    def __init__(self, layers: list[int], image_size=(112, 112), embedding_size: int = 512, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(_conv3x3(3, 64), nn.BatchNorm2d(64, eps=1e-5), nn.PReLU(64))
        stages, cin = [], 64
        for cout, depth in zip((64, 128, 256, 512), layers):
            blocks = [IBasicBlock(cin, cout, 2)] + [IBasicBlock(cout, cout, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        h, w = image_size[0] // 16, image_size[1] // 16
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512 * h * w, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        # Zero the last BN of each residual branch: every block starts as the identity, which
        # lets deep IResNets train at lr 0.1 without a long warm-up.
        for m in self.modules():
            if isinstance(m, IBasicBlock):
                nn.init.constant_(m.body[-1].weight, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet18(image_size=(112, 112), embedding_size: int = 512) -> IResNet:
    return IResNet([2, 2, 2, 2], image_size, embedding_size)


def iresnet50(image_size=(112, 112), embedding_size: int = 512) -> IResNet:
    return IResNet([3, 4, 14, 3], image_size, embedding_size)
