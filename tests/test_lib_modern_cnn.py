"""Tests of the modern-CNN library saved by chapter 8 (generated ``dlbook``).

Covers every saved architecture (AlexNet, VGG, NiN, GoogleNet, BNLeNetScratch, BNLeNet,
ResNet18, DenseNet, AnyNet, RegNetX32): output shape (batch, 10) at the input size its
section uses under the smoke profile and, for the cheap ones, under the full profile,
and one forward and backward pass. Also init_cnn_he (He scale, and that it keeps the
signal of a deep ReLU network where Xavier's init_cnn shrinks it), the building blocks
(vgg_block, nin_block, Inception, Residual with its batch-normalised projection,
ResNeXtBlock with group_width and its ValueError, DenseBlock, transition_block), batch
norm from scratch against nn.BatchNorm2d / nn.BatchNorm1d in training and evaluation
mode, group_norm against nn.GroupNorm, nn.LayerNorm and nn.InstanceNorm2d, the parameter
count of ResNet18 that section 8.6 states, evaluate_accuracy and design_space_errors.
Everything runs on random tensors; nothing reads a dataset.
"""

from __future__ import annotations

import pytest
import torch

import dlbook

if not hasattr(dlbook, "ResNet18"):
    pytest.fail("dlbook has no chapter 8 names yet: run `python -m tools lib` with "
                "chapters/08-modern-cnn in _toc.yml", pytrace=False)

from torch import nn  # noqa: E402

# Input sides under the smoke profile: the image-size cap that chapter 8 asks for turns
# 224-pixel requests into 67 pixels (AlexNet and NiN need at least 63) and 96-pixel ones
# into 32; the LeNets see the native 28 pixels in both profiles.
SMALL_224, SMALL_96 = 67, 32  # the image sides that the build's smoke runs use
NARROW_VGG11 = ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))  # what 8.2 trains

ARCHITECTURES = {  # name: (constructor, smoke side, full side or None if too costly)
    'AlexNet': (lambda: dlbook.AlexNet(lr=0.001), SMALL_224, 224),
    'VGG': (lambda: dlbook.VGG(NARROW_VGG11, lr=0.0003), SMALL_224, 224),
    'NiN': (lambda: dlbook.NiN(lr=0.001), SMALL_224, 224),
    'GoogleNet': (lambda: dlbook.GoogleNet(lr=0.0003), SMALL_96, 96),
    'BNLeNetScratch': (lambda: dlbook.BNLeNetScratch(lr=0.1), 28, 28),
    'BNLeNet': (lambda: dlbook.BNLeNet(lr=0.1), 28, 28),
    'ResNet18': (lambda: dlbook.ResNet18(lr=0.05), SMALL_96, 96),
    'DenseNet': (lambda: dlbook.DenseNet(lr=0.1), SMALL_96, 96),
    'RegNetX32': (lambda: dlbook.RegNetX32(lr=0.05), SMALL_96, 96),
}


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


def forward_backward(model, side, batch=2):
    """Scores for a random batch of one-channel images, after one backward pass."""
    X = torch.randn(batch, 1, side, side)
    model.apply_init([X], dlbook.init_cnn)
    scores = model(X)
    model.loss(scores, torch.randint(0, 10, (batch,))).backward()
    return scores


def assert_all_parameters_have_gradients(model):
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f'no gradient for {missing[:5]}'


# --- Architectures ----------------------------------------------------------------------

@pytest.mark.parametrize('name', ARCHITECTURES)
def test_architecture_at_small_image_size(name):
    make, side, _ = ARCHITECTURES[name]
    model = make()
    scores = forward_backward(model, side, batch=3)
    assert scores.shape == (3, 10)
    assert torch.isfinite(scores).all()
    assert_all_parameters_have_gradients(model)
    assert isinstance(model, dlbook.Classifier)


@pytest.mark.parametrize('name', ARCHITECTURES)
def test_architecture_at_full_size(name):
    make, _, side = ARCHITECTURES[name]
    model = make()
    scores = forward_backward(model, side)
    assert scores.shape == (2, 10)
    assert_all_parameters_have_gradients(model)


def test_alexnet_feature_map_sizes_match_the_paper():
    model = dlbook.AlexNet()
    X = torch.zeros(1, 1, 224, 224)
    sizes = []
    for layer in model.net:
        X = layer(X)
        if isinstance(layer, nn.MaxPool2d) or layer is model.net[0]:
            sizes.append(X.shape[-1])
    assert sizes == [55, 27, 13, 6]


def test_alexnet_and_nin_minimum_input_size():
    for make in (dlbook.AlexNet, dlbook.NiN):
        assert make()(torch.zeros(1, 1, 63, 63)).shape == (1, 10)
        with pytest.raises(RuntimeError):
            make()(torch.zeros(1, 1, 62, 62))


def test_any_size_and_ten_classes_arguments():
    model = dlbook.GoogleNet(num_classes=7)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
    assert dlbook.ResNet18(lr=0.3).lr == 0.3


def test_resnet18_parameter_count_is_what_section_8_6_says():
    model = dlbook.ResNet18(num_classes=10)
    model(torch.zeros(1, 1, 96, 96))
    assert sum(p.numel() for p in model.parameters()) == 11_180_170


def test_published_parameter_counts_quoted_in_the_chapter():
    def count(model, side):
        model(torch.zeros(1, 1, side, side))
        return sum(p.numel() for p in model.parameters())

    assert 58e6 < count(dlbook.AlexNet(), 224) < 60e6
    assert 1.9e6 < count(dlbook.NiN(), 224) < 2.1e6
    assert 0.75e6 < count(dlbook.DenseNet(), 96) < 0.77e6
    assert count(dlbook.RegNetX32(), 96) < 200_000


def test_models_use_the_documented_optimisers():
    assert isinstance(dlbook.AlexNet().configure_optimizers(), torch.optim.Adam)
    assert isinstance(dlbook.NiN().configure_optimizers(), torch.optim.Adam)
    model = dlbook.ResNet18(lr=0.05)
    model(torch.zeros(2, 1, 32, 32))
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]['lr'] == 0.05


# --- Blocks -----------------------------------------------------------------------------

def test_vgg_block_halves_and_sets_channels():
    block = dlbook.vgg_block(3, 20)
    assert block(torch.randn(2, 5, 32, 32)).shape == (2, 20, 16, 16)
    assert sum(isinstance(m, nn.Conv2d) for m in block) == 3


def test_nin_block_has_two_pointwise_convolutions():
    block = dlbook.nin_block(8, kernel_size=5, strides=1, padding=2)
    assert block(torch.randn(2, 3, 10, 10)).shape == (2, 8, 10, 10)
    kernels = [m.kernel_size for m in block if isinstance(m, nn.Conv2d)]
    assert kernels == [(5, 5), (1, 1), (1, 1)]


def test_inception_concatenates_its_branches():
    block = dlbook.Inception(64, (96, 128), (16, 32), 32)
    assert block(torch.randn(2, 192, 28, 28)).shape == (2, 256, 28, 28)


def test_init_cnn_he_uses_the_relu_scale_and_zero_biases():
    torch.manual_seed(0)
    conv, dense = nn.Conv2d(16, 64, kernel_size=3), nn.Linear(400, 300)
    relu, no_bias = nn.ReLU(), nn.Conv2d(8, 8, kernel_size=1, bias=False)
    for module in (conv, dense, relu, no_bias):
        dlbook.init_cnn_he(module)
    assert conv.weight.std().item() == pytest.approx((2 / (16 * 9)) ** 0.5, rel=0.05)
    assert dense.weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    assert (conv.bias == 0).all() and (dense.bias == 0).all()


def test_he_keeps_the_signal_of_a_deep_relu_network_that_xavier_shrinks():
    def output_rms(init):
        torch.manual_seed(0)
        layers = [nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU()]
        for _ in range(7):
            layers += [nn.Conv2d(32, 32, kernel_size=3, padding=1), nn.ReLU()]
        net = nn.Sequential(*layers)
        net.apply(init)
        with torch.no_grad():
            return net(torch.randn(8, 1, 16, 16)).pow(2).mean().sqrt().item()

    he, xavier = output_rms(dlbook.init_cnn_he), output_rms(dlbook.init_cnn)
    assert 0.3 < he < 3  # about the size of the unit-variance input
    assert xavier < he / 20  # each Xavier layer passes on a weaker signal


def test_residual_shapes_and_identity_shortcut():
    assert dlbook.Residual(3)(torch.randn(4, 3, 6, 6)).shape == (4, 3, 6, 6)
    halving = dlbook.Residual(6, use_1x1conv=True, strides=2)
    assert halving(torch.randn(4, 3, 6, 6)).shape == (4, 6, 3, 3)
    block = dlbook.Residual(3)
    X = torch.rand(2, 3, 5, 5)
    block(X)
    with torch.no_grad():  # zero residual branch: the block is relu(X) = X for X >= 0
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    assert torch.allclose(block(X), X)
    assert block.conv3 is None and block.bn3 is None


def test_residual_projection_shortcut_is_batch_normalised():
    block = dlbook.Residual(6, use_1x1conv=True, strides=2)
    X = 5 * torch.rand(4, 3, 6, 6) + 2
    block(X)
    assert isinstance(block.bn3, nn.BatchNorm2d) and block.bn3.num_features == 6
    shortcut = block.bn3(block.conv3(X))  # training mode: minibatch statistics
    assert torch.allclose(shortcut.mean(dim=(0, 2, 3)), torch.zeros(6), atol=1e-5)
    with torch.no_grad():  # zero residual branch: the block is relu(bn3(conv3(X)))
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    assert torch.allclose(block(X), torch.relu(shortcut), atol=1e-6)


def test_resnext_block_shapes_and_groups():
    block = dlbook.ResNeXtBlock(32, group_width=8, bot_mul=1)
    assert block(torch.randn(4, 32, 12, 12)).shape == (4, 32, 12, 12)
    grouped = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(grouped) == 1 and grouped[0].groups == 4  # 32 channels in groups of 8
    wider = dlbook.ResNeXtBlock(64, group_width=8, bot_mul=0.5, use_1x1conv=True,
                                strides=2)
    assert wider(torch.randn(4, 32, 12, 12)).shape == (4, 64, 6, 6)
    convs = [m for m in wider.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == 32 and convs[1].groups == 4  # round(64 * 0.5) / 8
    assert isinstance(wider.shortcut[1], nn.LazyBatchNorm2d | nn.BatchNorm2d)
    single = dlbook.ResNeXtBlock(40, group_width=20, bot_mul=0.5)  # one group of 20
    single(torch.randn(2, 40, 4, 4))
    assert [m.groups for m in single.modules() if isinstance(m, nn.Conv2d)] == [1, 1, 1]


@pytest.mark.parametrize('channels, group_width, bot_mul', [
    (40, 16, 1),  # 40 bottleneck channels are not groups of 16 (once 2 groups of 20)
    (48, 8, 0.25),  # 12 bottleneck channels
    (8, 4, 0.01),  # no bottleneck channels at all
])
def test_resnext_block_rejects_a_group_width_that_does_not_divide(channels, group_width,
                                                                   bot_mul):
    with pytest.raises(ValueError, match='group_width'):
        dlbook.ResNeXtBlock(channels, group_width=group_width, bot_mul=bot_mul)


def test_dense_and_transition_blocks():
    block = dlbook.DenseBlock(2, 10)
    Y = block(torch.randn(4, 3, 8, 8))
    assert Y.shape == (4, 23, 8, 8)
    assert dlbook.transition_block(10)(Y).shape == (4, 10, 4, 4)


def test_anynet_stages_and_regnet_architecture():
    model = dlbook.AnyNet([(2, 16, 4, 0.5), (1, 32, 4, 0.25)], stem_channels=8)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert [name for name, _ in model.net.named_children()] == \
        ['0', 'stage1', 'stage2', 'head']
    regnet = dlbook.RegNetX32()
    assert [len(regnet.net.stage1), len(regnet.net.stage2)] == [4, 6]


def test_anynet_checks_every_stage_and_regnet_section_spaces_are_valid():
    with pytest.raises(ValueError, match='group_width'):
        dlbook.AnyNet([(1, 16, 4, 0.25), (1, 40, 16, 1)], stem_channels=8)
    # every architecture that the free and constrained spaces of 8.8 can draw
    for width in (16, 32, 48, 64):
        for group_width in (1, 2, 4):
            for bot_mul in (0.25, 0.5, 1):
                dlbook.ResNeXtBlock(width, group_width, bot_mul)


def test_anynet_and_regnet_survive_the_builds_width_reduction():
    from dlbook import _smoke
    for model in (dlbook.RegNetX32(),
                  dlbook.AnyNet([(1, 16, 1, 0.25), (2, 48, 4, 0.25)], stem_channels=16)):
        _smoke.shrink_model(model, 0.5)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


# --- Normalisation ----------------------------------------------------------------------

def test_batch_norm_matches_pytorch_in_training_and_evaluation():
    ours, theirs = dlbook.BatchNorm(3, num_dims=4), nn.BatchNorm2d(3)
    for _ in range(4):
        X = 2 * torch.randn(8, 3, 5, 5) + 4
        assert torch.allclose(ours(X), theirs(X), atol=1e-5)
    assert torch.allclose(ours.moving_mean.flatten(), theirs.running_mean, atol=1e-5)
    assert torch.allclose(ours.moving_var.flatten(), theirs.running_var, atol=1e-5)
    ours.eval()
    theirs.eval()
    X = torch.randn(2, 3, 5, 5)
    assert torch.allclose(ours(X), theirs(X), atol=1e-5)


def test_batch_norm_dense_layers_match_batchnorm1d():
    ours, theirs = dlbook.BatchNorm(7, num_dims=2), nn.BatchNorm1d(7)
    with torch.no_grad():
        ours.gamma.copy_(torch.rand(1, 7) + 0.5)
        theirs.weight.copy_(ours.gamma.flatten())
    for _ in range(3):
        X = torch.randn(16, 7) * 3 - 1
        assert torch.allclose(ours(X), theirs(X), atol=1e-5)
    ours.eval()
    theirs.eval()
    X = torch.randn(4, 7)
    assert torch.allclose(ours(X), theirs(X), atol=1e-5)


def test_batch_norm_parameters_and_buffers():
    layer = dlbook.BatchNorm(16, num_dims=4)
    assert sorted(n for n, _ in layer.named_parameters()) == ['beta', 'gamma']
    assert sorted(n for n, _ in layer.named_buffers()) == ['moving_mean', 'moving_var']
    X = torch.randn(4, 16, 3, 3, requires_grad=True)
    layer(X).sum().backward()
    assert layer.gamma.grad is not None and X.grad is not None
    assert not layer.moving_mean.requires_grad


def test_bn_lenet_scratch_and_concise_agree():
    torch.manual_seed(1)
    scratch = dlbook.BNLeNetScratch()
    torch.manual_seed(1)
    concise = dlbook.BNLeNet()
    X = torch.randn(8, 1, 28, 28)
    torch.manual_seed(2)
    scratch.apply_init([X], dlbook.init_cnn)
    torch.manual_seed(2)
    concise.apply_init([X], dlbook.init_cnn)
    assert torch.allclose(scratch(X), concise(X), atol=1e-5)


def test_group_norm_matches_pytorch_and_special_cases():
    X = 3 * torch.randn(2, 6, 5, 5) + 1
    gamma, beta = torch.randn(6), torch.randn(6)
    reference = nn.GroupNorm(3, 6)
    with torch.no_grad():
        reference.weight.copy_(gamma)
        reference.bias.copy_(beta)
    assert torch.allclose(dlbook.group_norm(X, 3, gamma, beta), reference(X), atol=1e-5)
    ones, zeros = torch.ones(6), torch.zeros(6)
    layer_norm = nn.LayerNorm([6, 5, 5], elementwise_affine=False)
    assert torch.allclose(dlbook.group_norm(X, 1, ones, zeros), layer_norm(X), atol=1e-5)
    instance_norm = nn.InstanceNorm2d(6)
    assert torch.allclose(dlbook.group_norm(X, 6, ones, zeros), instance_norm(X),
                          atol=1e-5)
    with pytest.raises(AssertionError):
        dlbook.group_norm(X, 4, torch.ones(6), torch.zeros(6))


# --- Helpers ----------------------------------------------------------------------------

class TinyImages(dlbook.DataModule):
    """64 random 28x28 images with random labels: enough to exercise the training loop."""

    def __init__(self, n=64, batch_size=16):
        super().__init__()
        self.save_hyperparameters()
        generator = torch.Generator().manual_seed(0)
        self.X = torch.rand(n, 1, 28, 28, generator=generator)
        self.y = torch.randint(0, 10, (n,), generator=generator)

    def get_dataloader(self, train):
        dataset = torch.utils.data.TensorDataset(self.X, self.y)
        return torch.utils.data.DataLoader(dataset, batch_size=self.batch_size,
                                           shuffle=train)


def test_evaluate_accuracy_counts_every_validation_example():
    class Constant(nn.Module):
        def forward(self, X):
            scores = torch.zeros(len(X), 10)
            scores[:, 3] = 1
            return scores

    model = Constant()
    model.register_parameter('dummy', nn.Parameter(torch.zeros(1)))
    data = TinyImages(n=50)
    expected = (data.y == 3).float().mean().item()
    assert dlbook.evaluate_accuracy(model, data) == pytest.approx(expected)
    assert not model.training


def test_design_space_errors_trains_every_sampled_model():
    calls = []

    def sample(generator):
        calls.append(torch.rand(1, generator=generator).item())
        return [(1, 16, 4, 0.5)], 8

    errors = dlbook.design_space_errors(sample, 3, TinyImages(), max_epochs=1)
    assert len(errors) == 3 and len(calls) == 3
    assert all(0 <= e <= 1 for e in errors)
    assert len(set(calls)) == 3  # one generator, advanced from model to model
