"""Architecture registry: `build_model(ModelSpec)` makes any zoo model for any data set."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from advbench.registry import Registry

ARCHS: Registry[Any] = Registry("architecture")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model's module before loading its weights."""

    arch: str
    dataset: str
    shape: tuple[int, int, int]
    classes: int
    activation: str = "relu"
    activation_param: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # an imported model (arch "import"): its factory or torchvision name and arguments
    source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["source"] is None:  # zoo specs stay as they were stored
            del d["source"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        for k in ("mean", "std"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


def build_model(spec: ModelSpec):
    from advbench.models.layers import Activation, Normalize, ZooModel

    if spec.arch == "import":  # the user's module; its output (logits) is the embedding too
        from torch import nn

        from advbench.models.imported import build_source

        features, head = build_source(spec.source or {}), nn.Identity()
    else:
        builder = ARCHS.get(spec.arch).factory
        features, head = builder(
            spec.shape, spec.classes, lambda: Activation(spec.activation, spec.activation_param)
        )
    norm = Normalize(spec.mean, spec.std) if spec.mean is not None else None
    model = ZooModel(features, head, norm)
    model.input_shape, model.classes = spec.shape, spec.classes  # for ART's wrapper
    return model


def _lazy(name: str, *args: int):
    """Register without importing torch: the zoo module loads on first build."""

    def builder(shape, classes, act):
        from advbench.models import zoo

        fn = getattr(zoo, name)
        return (fn(*args) if args else fn)(shape, classes, act)

    return builder


for _name, _fn, _args, _paper, _help in [
    ("keras-mnist", "keras_mnist", (), "fidel", "Keras MNIST example CNN"),
    ("ibm-cnn", "ibm_cnn", (), "zantedeschi", "Conv64 8x8 - Conv128 6x6 - Conv128 5x5"),
    ("ibm-resnet", "ibm_resnet", (), "zantedeschi", "CNN with 1x1 convs and identity shortcut"),
    ("tf-mnist", "tf_mnist", (), "jakubovitz", "TF tutorial CNN, fc1024, dropout 0.5"),
    ("cnn4-cifar", "cnn4_cifar", (), "jakubovitz", "4 x (conv, conv, pool, dropout) + 2 FC"),
    ("madry-mnist", "madry_mnist", (), "pesso", "Madry conv32-pool-conv64-pool-fc1024"),
    ("vgg19", "vgg19", (), "fidel", "VGG19 with batch norm"),
    ("resnet56", "_cifar_resnet", (56,), "madnet", "CIFAR ResNet-56, leaky ReLU 0.1 (App. C)"),
    ("resnet32", "_cifar_resnet", (32,), "madnet", "CIFAR ResNet-32 (black-box proxy)"),
    ("wrn-28-10", "wrn", (28, 10), "pesso", "WideResNet-28-10"),
    ("resnet50", "resnet50", (), "pesso", "torchvision ResNet-50"),
]:
    # madnet Appendix C (002:303): its ResNet-56 uses leaky ReLU with slope 0.1.
    act = {"activation": "leaky-relu", "activation_param": 0.1} if _name == "resnet56" else {}
    ARCHS.register(_name, _lazy(_fn, *_args), paper=_paper, help=_help, **act)


def default_activation(arch: str) -> tuple[str, float | None]:
    """The activation an architecture is trained with when none is asked for."""
    meta = ARCHS.get(arch).meta
    return meta.get("activation", "relu"), meta.get("activation_param")
