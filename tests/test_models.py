"""The zoo: shapes, embeddings, recorded activations, BReLU bounds, safe checkpoints."""

import json

import pytest
import torch

from advbench.errors import BadInput
from advbench.models import ARCHS, ModelSpec, build_model
from advbench.models.checkpoint import load_checkpoint, save_checkpoint

SMALL = [a for a in ARCHS.names() if a not in ("wrn-28-10", "resnet50", "vgg19")]


@pytest.mark.parametrize("arch", SMALL)
@pytest.mark.parametrize("shape,classes", [((1, 28, 28), 10), ((3, 32, 32), 100)])
def test_arch_builds_for_any_dataset_shape(arch, shape, classes):
    model = build_model(ModelSpec(arch, "x", shape, classes)).eval()
    x = torch.rand(2, *shape)
    logits, acts = model.forward_with_activations(x)
    assert logits.shape == (2, classes)
    assert model.embed(x).shape[0] == 2 and model.embed(x).dim() == 2
    assert torch.allclose(model.head(model.embed(x)), logits, atol=1e-5)
    assert len(acts) >= 2 and all(a.shape[0] == 2 for a in acts)


@pytest.mark.parametrize("arch", ["vgg19", "wrn-28-10", "resnet50"])
def test_large_archs_build(arch):
    model = build_model(ModelSpec(arch, "x", (3, 32, 32), 10)).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_brelu_bounds_every_activation():
    spec = ModelSpec("ibm-cnn", "x", (1, 28, 28), 10, activation="brelu", activation_param=0.5)
    model = build_model(spec).eval()
    _, acts = model.forward_with_activations(torch.rand(4, 1, 28, 28) * 5)
    assert max(float(a.max()) for a in acts) <= 0.5
    assert min(float(a.min()) for a in acts) >= 0.0


def test_leaky_relu_passes_negative_slope():
    spec = ModelSpec("resnet32", "x", (3, 32, 32), 10, activation="leaky-relu")
    model = build_model(spec).eval()
    _, acts = model.forward_with_activations(torch.randn(2, 3, 32, 32))
    assert min(float(a.min()) for a in acts) < 0


def test_normalisation_is_inside_the_model():
    spec = ModelSpec("madry-mnist", "x", (3, 32, 32), 10, mean=(0.5, 0.5, 0.5), std=(0.25,) * 3)
    model = build_model(spec).eval()
    x = torch.full((1, 3, 32, 32), 0.5)
    assert torch.allclose(model.norm(x), torch.zeros_like(x))


def test_checkpoint_round_trip_and_tamper_detection(tmp_path):
    spec = ModelSpec("keras-mnist", "digits", (1, 8, 8), 10)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    checksum = save_checkpoint(model, spec, tmp_path / "m", {"name": "m"})
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["sha256"] == checksum and meta["spec"]["arch"] == "keras-mnist"
    loaded, spec2, _ = load_checkpoint(tmp_path / "m", checksum)
    x = torch.rand(3, 1, 8, 8)
    assert spec2 == spec
    assert torch.equal(loaded(x), model(x))
    raw = bytearray((tmp_path / "m.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "m.safetensors").write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="sha256"):
        load_checkpoint(tmp_path / "m", checksum)


def test_model_names_with_dots_do_not_share_files(tmp_path):
    spec = ModelSpec("tf-mnist", "digits", (1, 8, 8), 10, "relu", None, None, None)
    a = save_checkpoint(build_model(spec), spec, tmp_path / "m", {})
    b = save_checkpoint(build_model(spec), spec, tmp_path / "m.proxy-x", {})
    assert a != b
    load_checkpoint(tmp_path / "m", a)  # still the first model's weights
    load_checkpoint(tmp_path / "m.proxy-x", b)
