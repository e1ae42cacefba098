"""MobileFaceNet (Chen et al. 2018): a ~1M-parameter face embedder that trains in reasonable time on a CPU.

Inverted-residual bottlenecks as in MobileNetV2, PReLU activations, and a global depthwise
convolution (GDC) over the last feature map instead of global average pooling: the centre of an
aligned face matters more than its border, and GDC learns that weighting where pooling cannot.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin, cout, kernel=1, stride=1, padding=0, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.PReLU(cout))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """1x1 expand, 3x3 depthwise (maybe strided), 1x1 linear project; residual when shapes agree."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int):
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            ConvBN(cin, hidden),
            ConvBN(hidden, hidden, 3, stride, 1, groups=hidden),
            ConvBN(hidden, cout, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileFaceNet(nn.Module):
    # (expansion hidden width, output channels, repeats, stride of the first), from the paper's Table 1.
    STAGES = ((128, 64, 5, 2), (256, 128, 1, 2), (256, 128, 6, 1), (512, 128, 1, 2), (256, 128, 2, 1))

    def __init__(self, image_size=(112, 112), embedding_size: int = 512):
        super().__init__()
        layers = [ConvBN(3, 64, 3, 2, 1), ConvBN(64, 64, 3, 1, 1, groups=64)]
        cin = 64
        for hidden, cout, repeats, stride in self.STAGES:
            for r in range(repeats):
                layers.append(Bottleneck(cin, cout, hidden, stride if r == 0 else 1))
                cin = cout
        layers.append(ConvBN(cin, 512))
        self.body = nn.Sequential(*layers)
        h, w = image_size[0] // 16, image_size[1] // 16
        self.gdc = ConvBN(512, 512, (h, w), groups=512, act=False)
        self.fc = nn.Linear(512, embedding_size, bias=False)
        self.features = nn.BatchNorm1d(embedding_size)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gdc(self.body(x))
        return self.features(self.fc(torch.flatten(x, 1)))


def mobilefacenet(image_size=(112, 112), embedding_size: int = 512) -> MobileFaceNet:
    return MobileFaceNet(image_size, embedding_size)
