"""The architectures of the five papers, built for any input shape and class count.

Each builder returns (features, head): `features` maps an image to the flattened
penultimate-layer embedding, `head` maps the embedding to logits. `act()` makes a fresh
Activation of the selected kind, so the activation is switchable wherever a paper varies it.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from advbench.models.layers import Activation, flat_size

Act = Callable[[], Activation]
Shape = tuple[int, int, int]


def _with_head(body: nn.Module, shape: Shape, classes: int, hidden: list[nn.Module] | None = None):
    """Flatten `body`, add optional hidden layers, then a linear head."""
    features = nn.Sequential(body, nn.Flatten(), *(hidden or []))
    return features, nn.Linear(flat_size(features, shape), classes)


def keras_mnist(shape: Shape, classes: int, act: Act):
    """Keras MNIST example (fidel): conv32-conv64-maxpool-dropout-fc128-dropout-fc."""
    c = shape[0]
    body = nn.Sequential(
        nn.Conv2d(c, 32, 3), act(), nn.Conv2d(32, 64, 3), act(), nn.MaxPool2d(2), nn.Dropout(0.25)
    )
    n = flat_size(nn.Sequential(body, nn.Flatten()), shape)
    return _with_head(body, shape, classes, [nn.Linear(n, 128), act(), nn.Dropout(0.5)])


def ibm_cnn(shape: Shape, classes: int, act: Act):
    """Zantedeschi et al.'s CNN: Conv(64, 8x8) - Conv(128, 6x6) - Conv(128, 5x5) - Softmax.

    Strides and padding as in the cleverhans basic CNN the paper's code builds on
    (8x8 stride 2 'same', 6x6 stride 2 'valid', 5x5 stride 1 'valid'); small inputs
    fall back to padding so the last convolution still fits.
    """
    c, h, _ = shape
    small = h < 20
    body = nn.Sequential(
        nn.Conv2d(c, 64, 8, stride=2, padding=3),
        act(),
        nn.Conv2d(64, 128, 6, stride=2, padding=3 if small else 0),
        act(),
        nn.Conv2d(128, 128, 5, padding=2 if small else 0),
        act(),
    )
    return _with_head(body, shape, classes)


class _IbmResBody(nn.Module):
    """Zantedeschi's ResNet variant: identity shortcut from layer 2 to the 1x1 convs' output."""

    def __init__(self, c: int, act: Act, small: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 8, stride=2, padding=3)
        self.conv2 = nn.Conv2d(64, 128, 6, stride=2, padding=3 if small else 0)
        self.conv3 = nn.Conv2d(128, 128, 1)
        self.conv4 = nn.Conv2d(128, 128, 1)
        self.a1, self.a2, self.a3, self.a4 = act(), act(), act(), act()
        self.pool = nn.MaxPool2d(3, stride=1 if small else 3, padding=1 if small else 0)

    def forward(self, x):
        h2 = self.a2(self.conv2(self.a1(self.conv1(x))))
        h4 = self.conv4(self.a3(self.conv3(h2)))
        return self.pool(self.a4(h4 + h2))


def ibm_resnet(shape: Shape, classes: int, act: Act):
    """Zantedeschi et al.'s ResNet: Conv64 8x8 - Conv128 6x6 - Conv128 1x1 - Conv128 1x1
    (+ identity shortcut from the 6x6 conv) - MaxPool 3x3 - Softmax."""
    return _with_head(_IbmResBody(shape[0], act, shape[1] < 20), shape, classes)


def _two_conv(shape: Shape, act: Act, dropout: float | None, classes: int):
    c = shape[0]
    body = nn.Sequential(
        nn.Conv2d(c, 32, 5, padding=2),
        act(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        act(),
        nn.MaxPool2d(2),
    )
    n = flat_size(nn.Sequential(body, nn.Flatten()), shape)
    hidden: list[nn.Module] = [nn.Linear(n, 1024), act()]
    if dropout:
        hidden.append(nn.Dropout(dropout))
    return _with_head(body, shape, classes, hidden)


def tf_mnist(shape: Shape, classes: int, act: Act):
    """TensorFlow 'deep MNIST' tutorial CNN (jakubovitz): two conv5x5 + max-pool, fc1024,
    dropout 0.5, fc."""
    return _two_conv(shape, act, 0.5, classes)


def madry_mnist(shape: Shape, classes: int, act: Act):
    """Madry et al.'s MNIST net (pesso): conv32-pool-conv64-pool-fc1024-fc."""
    return _two_conv(shape, act, None, classes)


def cnn4_cifar(shape: Shape, classes: int, act: Act):
    """Jakubovitz's CIFAR-10 net: 4 x (conv, conv, max-pool, dropout 0.25) + 2 FC.

    The paper gives no widths; 32-64-128-256 with a 512-unit FC layer is our choice.
    """
    layers: list[nn.Module] = []
    c = shape[0]
    for w in (32, 64, 128, 256):
        layers += [
            nn.Conv2d(c, w, 3, padding=1),
            act(),
            nn.Conv2d(w, w, 3, padding=1),
            act(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Dropout(0.25),
        ]
        c = w
    body = nn.Sequential(*layers)
    n = flat_size(nn.Sequential(body, nn.Flatten()), shape)
    return _with_head(body, shape, classes, [nn.Linear(n, 512), act(), nn.Dropout(0.5)])


_VGG19 = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
    "M",
]


def vgg19(shape: Shape, classes: int, act: Act):
    """VGG19 with batch norm, CIFAR-style (one linear classifier on 512 features)."""
    layers: list[nn.Module] = []
    c, h = shape[0], shape[1]
    for v in _VGG19:
        if v == "M":
            if h >= 2:
                layers.append(nn.MaxPool2d(2))
                h //= 2
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), act()]
            c = v
    layers.append(nn.AdaptiveAvgPool2d(1))
    return _with_head(nn.Sequential(*layers), shape, classes)


class _BasicBlock(nn.Module):
    def __init__(
        self, cin: int, cout: int, stride: int, act: Act, dropout: float = 0.0, preact: bool = False
    ):
        super().__init__()
        self.preact = preact
        self.bn1 = nn.BatchNorm2d(cin if preact else cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.a1, self.a2 = act(), act()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.short = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.Identity() if preact else nn.BatchNorm2d(cout),
            )

    def forward(self, x):
        if self.preact:  # wide ResNet: BN-act-conv ordering
            o = self.a1(self.bn1(x))
            out = self.conv2(self.drop(self.a2(self.bn2(self.conv1(o)))))
            return out + self.short(o if not isinstance(self.short, nn.Identity) else x)
        out = self.a1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.drop(out)))
        return self.a2(out + self.short(x))


def _cifar_resnet(depth: int):
    n = (depth - 2) // 6

    def build(shape: Shape, classes: int, act: Act):
        layers: list[nn.Module] = [
            nn.Conv2d(shape[0], 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            act(),
        ]
        cin = 16
        for i, w in enumerate((16, 32, 64)):
            for j in range(n):
                layers.append(_BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, act))
                cin = w
        layers.append(nn.AdaptiveAvgPool2d(1))
        return _with_head(nn.Sequential(*layers), shape, classes)

    build.__doc__ = f"CIFAR ResNet-{depth} (He et al. 2016, 3 stages of {n} basic blocks)."
    return build


def wrn(depth: int, widen: int):
    n = (depth - 4) // 6

    def build(shape: Shape, classes: int, act: Act):
        widths = [16 * widen, 32 * widen, 64 * widen]
        layers: list[nn.Module] = [nn.Conv2d(shape[0], 16, 3, 1, 1, bias=False)]
        cin = 16
        for i, w in enumerate(widths):
            for j in range(n):
                layers.append(_BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, act, preact=True))
                cin = w
        layers += [nn.BatchNorm2d(cin), act(), nn.AdaptiveAvgPool2d(1)]
        return _with_head(nn.Sequential(*layers), shape, classes)

    build.__doc__ = f"WideResNet-{depth}-{widen} (Zagoruyko & Komodakis 2016)."
    return build


class _TorchvisionBody(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def resnet50(shape: Shape, classes: int, act: Act):
    """torchvision's ResNet-50 (randomly initialised; no hub weights are fetched).

    Its ReLUs are swapped for our Activation so they can be recorded and switched.
    """
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    if shape[0] != 3:
        net.conv1 = nn.Conv2d(shape[0], 64, 7, 2, 3, bias=False)
    _swap_relu(net, act)
    net.fc = nn.Identity()
    return _with_head(_TorchvisionBody(net), shape, classes)


def _swap_relu(module: nn.Module, act: Act) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, act())
        else:
            _swap_relu(child, act)
