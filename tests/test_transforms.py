"""Invertibility and exact log-determinants of every transform and of whole flows."""

import pytest
import torch
from conftest import perturb

from speechbrain_fdnf.lobes import (
    ActNorm,
    AffineCoupling,
    InvertibleLinear,
    Permutation,
    RationalQuadraticCoupling,
    RealNVP,
    has_native_bfloat16,
    rational_quadratic_spline,
)

DIM = 5


def make_transforms():
    return {
        "coupling-even": lambda: AffineCoupling(DIM, hidden_size=16, parity=0),
        "coupling-odd": lambda: AffineCoupling(DIM, hidden_size=16, num_hidden_layers=3, parity=1, activation=torch.nn.Tanh),
        "spline-even": lambda: RationalQuadraticCoupling(DIM, hidden_size=16, num_bins=6, tail_bound=3.0),
        "spline-odd": lambda: RationalQuadraticCoupling(DIM, hidden_size=16, num_hidden_layers=1, parity=1, num_bins=3),
        "actnorm": lambda: ActNorm(DIM),
        "lu-linear": lambda: InvertibleLinear(DIM),
        "perm-random": lambda: Permutation(DIM, "random"),
        "perm-reverse": lambda: Permutation(DIM, "reverse"),
        "flow-1-lu": lambda: RealNVP(DIM, num_blocks=1, hidden_size=16),
        "flow-3-permute": lambda: RealNVP(DIM, num_blocks=3, hidden_size=16, mixing="permute"),
        "flow-6-none-noactnorm": lambda: RealNVP(DIM, num_blocks=6, hidden_size=16, mixing="none", actnorm=False),
        "flow-8-lu": lambda: RealNVP(DIM, num_blocks=8, hidden_size=32),
        "flow-4-spline": lambda: RealNVP(DIM, num_blocks=4, hidden_size=16, coupling="spline", num_bins=5),
    }


TRANSFORMS = make_transforms()


def build(name, dtype):
    # Whole flows get a smaller kick: random shifts compound over blocks into
    # latents of ~1e5 that float32 cannot round-trip; trained flows are tamer.
    # Spline layers too: a random kick makes some knot slopes ~1e-3, where float32 cannot invert to 1e-4.
    scale = 0.05 if name.startswith("flow") else 0.1 if name.startswith("spline") else 0.3
    return perturb(TRANSFORMS[name](), scale).to(dtype).eval()


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_inverse_recovers_input(name, dtype, tol):
    module = build(name, dtype)
    x = torch.randn(64, DIM, dtype=dtype) * 2
    y, _ = module(x)
    x_back, _ = module.inverse(y)
    assert (x_back - x).abs().max().item() < tol
    z = torch.randn(64, DIM, dtype=dtype)
    assert (module(module.inverse(z)[0])[0] - z).abs().max().item() < tol


@pytest.mark.parametrize("name", TRANSFORMS)
def test_log_det_matches_autograd_jacobian(name):
    module = build(name, torch.float64)
    x = torch.randn(4, DIM, dtype=torch.float64)
    _, log_det = module(x)
    for i in range(x.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: module(v[None])[0][0], x[i])
        expected = torch.linalg.slogdet(jac).logabsdet
        assert abs(log_det[i].item() - expected.item()) < 1e-4
    # and the inverse's log-det is that of the inverse map at y
    y, _ = module(x)
    _, inv_log_det = module.inverse(y)
    jac = torch.autograd.functional.jacobian(lambda v: module.inverse(v[None])[0][0], y[0])
    assert abs(inv_log_det[0].item() - torch.linalg.slogdet(jac).logabsdet.item()) < 1e-4


@pytest.mark.parametrize("name", TRANSFORMS)
def test_forward_and_inverse_log_dets_cancel(name):
    module = build(name, torch.float64)
    x = torch.randn(32, DIM, dtype=torch.float64)
    y, log_det = module(x)
    _, inv_log_det = module.inverse(y)
    assert torch.allclose(log_det + inv_log_det, torch.zeros_like(log_det), atol=1e-8)


def test_leading_dimensions_are_kept():
    flow = perturb(RealNVP(DIM, num_blocks=2, hidden_size=8)).eval()
    x = torch.randn(3, 7, DIM)
    z, log_det = flow(x)
    assert z.shape == x.shape and log_det.shape == (3, 7)
    assert torch.allclose(flow.decode(z), x, atol=1e-4)


def test_coupling_log_scale_is_bounded():
    layer = AffineCoupling(4, hidden_size=8, scale_bound=2.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(50.0)  # would overflow exp() without the bound
    y, log_det = layer(torch.ones(2, 4))
    assert torch.isfinite(y).all()
    assert (log_det.abs() <= 2.0 * 2 + 1e-6).all()  # two transformed dims


def test_coupling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dim >= 2"):
        AffineCoupling(1)
    with pytest.raises(ValueError, match="parity"):
        AffineCoupling(4, parity=2)
    with pytest.raises(ValueError, match="mixing"):
        RealNVP(4, mixing="shuffle")


def test_actnorm_initialises_once_from_data_and_keeps_it_in_state_dict():
    norm = ActNorm(3)
    x = torch.randn(500, 3) * torch.tensor([1.0, 4.0, 0.1]) + torch.tensor([3.0, -2.0, 0.5])
    y, _ = norm(x)
    assert torch.allclose(y.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(3), atol=1e-3)
    # a second batch does not re-initialise
    bias = norm.bias.detach().clone()
    norm(torch.randn(10, 3) * 100)
    assert torch.equal(norm.bias.detach(), bias)
    # a fresh module loaded from the state dict is initialised and does not re-initialise
    loaded = ActNorm(3)
    loaded.load_state_dict(norm.state_dict())
    assert bool(loaded.initialized)
    loaded(torch.randn(10, 3) * 100)
    assert torch.equal(loaded.bias.detach(), bias)


def test_actnorm_does_not_initialise_in_eval_mode():
    norm = ActNorm(3).eval()
    x = torch.randn(10, 3) * 5
    y, _ = norm(x)
    assert torch.equal(x, y) and not bool(norm.initialized)


def test_lu_linear_log_det_is_sum_of_log_s_after_training_steps():
    mix = InvertibleLinear(6)
    opt = torch.optim.SGD(mix.parameters(), lr=0.1)
    for _ in range(5):
        y, log_det = mix(torch.randn(16, 6))
        loss = (y**2).sum(-1).mean() - log_det.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = mix.weight().detach().double()
    assert abs(torch.linalg.slogdet(w).logabsdet.item() - mix.log_s.sum().item()) < 1e-4


def test_a_flow_restored_from_its_state_dict_computes_exactly_the_same():
    flow = perturb(RealNVP(DIM, num_blocks=3, hidden_size=8, mixing="permute"))
    torch.manual_seed(123)  # a different permutation draw for the copy
    copy = RealNVP(DIM, num_blocks=3, hidden_size=8, mixing="permute")
    copy.load_state_dict(flow.state_dict())
    x = torch.randn(5, DIM)
    assert torch.equal(flow.eval()(x)[0], copy.eval()(x)[0])


def random_spline(shape, num_bins, scale=2.0, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    draw = lambda *size: (torch.randn(*shape, *size, generator=gen) * scale).to(dtype)  # noqa: E731
    return draw(num_bins), draw(num_bins), draw(num_bins - 1)


def test_spline_is_the_identity_in_the_tails_and_continuous_at_the_bound():
    widths, heights, derivatives = random_spline((6,), 5)
    x = torch.tensor([-1e3, -3.0001, -3.0, 3.0, 3.0001, 50.0])
    y, log_det = rational_quadratic_spline(x, widths, heights, derivatives, bound=3.0)
    assert torch.equal(y[[0, 1, 4, 5]], x[[0, 1, 4, 5]]) and torch.equal(log_det[[0, 1, 4, 5]], torch.zeros(4))
    torch.testing.assert_close(y[[2, 3]], x[[2, 3]])  # the ends of the spline meet the tails
    torch.testing.assert_close(log_det[[2, 3]], torch.zeros(2), atol=1e-5, rtol=0)  # slope 1 at both ends


def test_spline_maps_knots_to_knots_and_inverts_there():
    bound, num_bins = 2.0, 4
    widths, heights, derivatives = random_spline((num_bins + 1,), num_bins, dtype=torch.float64)
    fractions = lambda raw: 1e-3 + (1 - 1e-3 * num_bins) * torch.softmax(raw, -1)  # noqa: E731
    knots_x = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(fractions(widths[0]), 0)]) * 2 * bound - bound
    knots_y = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(fractions(heights[0]), 0)]) * 2 * bound - bound
    same = lambda t: t[:1].expand(num_bins + 1, -1)  # noqa: E731  (one spline for every knot)
    y, _ = rational_quadratic_spline(knots_x, same(widths), same(heights), same(derivatives), bound=bound)
    torch.testing.assert_close(y, knots_y, atol=1e-12, rtol=0)
    back, _ = rational_quadratic_spline(knots_y, same(widths), same(heights), same(derivatives), bound=bound, inverse=True)
    torch.testing.assert_close(back, knots_x, atol=1e-9, rtol=0)


def test_spline_is_monotone_finite_and_exact_for_large_inputs_and_extreme_parameters():
    widths, heights, derivatives = random_spline((2001,), 8, scale=6.0)
    x = torch.linspace(-4.5, 4.5, 2001)
    y, log_det = rational_quadratic_spline(x, widths[:1].expand(2001, -1), heights[:1].expand(2001, -1),
                                           derivatives[:1].expand(2001, -1))
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all() and (y[1:] >= y[:-1]).all()
    big = torch.tensor([1e30, -1e30, 1e6, float("inf")])
    y, log_det = rational_quadratic_spline(big, *random_spline((4,), 8, scale=6.0))
    assert torch.equal(y, big) and torch.equal(log_det, torch.zeros(4))
    x = (torch.rand(4096, dtype=torch.float64) * 8 - 4).requires_grad_()
    steep = random_spline((4096,), 8, scale=3.0, dtype=torch.float64)  # knot slopes from 1e-3 to ~e^9
    y, log_det = rational_quadratic_spline(x, *steep)
    back, _ = rational_quadratic_spline(y.detach(), *steep, inverse=True)
    assert (back - x.detach()).abs().max() < 1e-6  # exact in float64 even there
    (y.sum() + log_det.sum()).backward()
    assert torch.isfinite(x.grad).all()
    # float32 round trip where the spline is not flatter than about e^-4.5 (at slope s, a rounding of y
    # moves x by eps / s: no float32 formula inverts a spline that flattens to e^-9 to 1e-4)
    x = torch.rand(4096) * 10 - 5
    moderate = random_spline((4096,), 8, scale=0.5)
    back, _ = rational_quadratic_spline(rational_quadratic_spline(x, *moderate)[0], *moderate, inverse=True)
    assert (back - x).abs().max() < 1e-4


def test_spline_coupling_starts_as_the_identity_and_rejects_bad_arguments():
    layer = RationalQuadraticCoupling(DIM, hidden_size=8)
    x = torch.randn(10, DIM) * 3
    y, log_det = layer(x)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros(10), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="dim >= 2"):
        RationalQuadraticCoupling(1)
    with pytest.raises(ValueError, match="num_bins"):
        RationalQuadraticCoupling(4, num_bins=1)
    with pytest.raises(ValueError, match="coupling must be one of"):
        RealNVP(4, coupling="cubic")


def test_flow_fuses_actnorm_and_lu_into_the_same_map_with_the_same_gradients():
    torch.manual_seed(0)
    flow = perturb(RealNVP(DIM, num_blocks=3, hidden_size=16), 0.3).double()
    x = torch.randn(32, DIM, dtype=torch.float64) * 2
    flow(x)  # training mode: the first call initialises the ActNorms (unfused path)
    assert all(bool(t.initialized) for t in flow.transforms if isinstance(t, ActNorm))

    def chained(inputs):  # every transform on its own
        log_det = 0
        for transform in flow.transforms:
            inputs, step = transform(inputs)
            log_det = log_det + step
        return inputs, log_det

    z, log_det = flow(x)
    z_ref, log_det_ref = chained(x)
    assert torch.allclose(z, z_ref, atol=1e-10) and torch.allclose(log_det, log_det_ref, atol=1e-10)
    grads = torch.autograd.grad((z**2).sum() + log_det.sum(), list(flow.parameters()))
    grads_ref = torch.autograd.grad((z_ref**2).sum() + log_det_ref.sum(), list(flow.parameters()))
    assert all(torch.allclose(g, r, atol=1e-9) for g, r in zip(grads, grads_ref))
    x_back, inverse_log_det = flow.inverse(z)
    assert torch.allclose(x_back, x, atol=1e-9) and torch.allclose(inverse_log_det, -log_det, atol=1e-9)


def test_a_frozen_flow_reuses_its_fused_maps_and_follows_every_change_of_its_parameters():
    torch.manual_seed(0)
    flow, other = (perturb(RealNVP(DIM, num_blocks=3, hidden_size=16), 0.3) for _ in range(2))
    x = torch.randn(64, DIM)
    for model in (flow, other):
        model(x)  # ActNorm initialisation
        model.eval()

    def frozen(model, inputs, inverse=False):
        with torch.no_grad():
            return (model.inverse if inverse else model.forward)(inputs)

    def tracked(model, inputs, inverse=False):  # with gradients: never cached
        return tuple(t.detach() for t in (model.inverse if inverse else model.forward)(inputs))

    def same(a, b):
        return all(torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b))

    for _ in range(2):  # encode and decode in turn: one cached map per direction
        z = frozen(flow, x)
        assert same(z, tracked(flow, x)) and same(frozen(flow, z[0], inverse=True), tracked(flow, z[0], inverse=True))
    mixing = next(t for t in flow.transforms if isinstance(t, InvertibleLinear))
    assert set(mixing._fused_cache) == {False, True}
    flow.load_state_dict(other.state_dict())  # new weights in the same storage: the cache follows
    assert same(frozen(flow, x), tracked(other, x))
    for optimizer in (torch.optim.SGD(flow.parameters(), lr=0.1),  # training steps in between; a fused
                      torch.optim.Adam(flow.parameters(), lr=0.1, fused=True)):  # Adam bumps no version counter
        flow.train()
        flow(x)[1].sum().backward()
        optimizer.step()
        flow.eval()
        assert same(frozen(flow, x), tracked(flow, x)) and not same(frozen(flow, x), tracked(other, x))
    mixing.log_s.data.add_(0.5)  # a change through .data
    assert same(frozen(flow, x), tracked(flow, x))
    double = flow.double()  # new storage and dtype
    assert same(frozen(double, x.double()), tracked(double, x.double()))
    assert "_fused_cache" not in str(flow.state_dict().keys())


def test_spline_gradients_match_finite_differences_in_every_input_and_parameter():
    # the bins are gathered by a hand-written backward (it keeps only the indices): check it numerically
    widths, heights, derivatives = random_spline((3, 4), 5, scale=1.0, dtype=torch.float64)
    x = torch.tensor([[-2.5, -0.7, 0.3, 1.9], [-1.1, 0.05, 2.2, 3.5], [-3.9, -0.2, 0.9, 4.5]], dtype=torch.float64)
    for inverse in (False, True):
        def spline(*args, inverse=inverse):
            return rational_quadratic_spline(*args, bound=4.0, inverse=inverse)

        inputs = [t.clone().requires_grad_() for t in (x, widths, heights, derivatives)]
        assert torch.autograd.gradcheck(spline, inputs, eps=1e-6, atol=1e-6)


def test_spline_knot_slopes_are_capped_without_losing_the_gradient():
    widths, heights, _ = random_spline((4,), 6)
    wild = torch.full((4, 5), 1e4, requires_grad=True)  # exp(1e4) overflows float32 without the cap
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], requires_grad=True)
    y, log_det = rational_quadratic_spline(x, widths, heights, wild)
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    (y.sum() + log_det.sum()).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(wild.grad).all()
    # below the cap the slopes are exp(raw) exactly: the same spline as from the capped value itself
    capped = torch.full((4, 5), 20.0)
    torch.testing.assert_close(rational_quadratic_spline(x, widths, heights, capped)[0], y)


def training_flows(*precisions, coupling="affine", hidden_size=32, num_blocks=3):
    """Flows with the same parameters at each training precision, in training mode, ActNorms initialised."""
    torch.manual_seed(0)
    flows = [RealNVP(DIM, num_blocks=num_blocks, hidden_size=hidden_size, coupling=coupling,
                     training_precision=precision) for precision in precisions]
    perturb(flows[0], 0.1)
    for flow in flows:
        flow.load_state_dict(flows[0].state_dict())  # the option adds no parameter
        for module in flow.modules():
            if isinstance(module, ActNorm):
                module.initialized.fill_(True)
    return flows


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_bfloat16_training_lowers_only_the_conditioners_and_eval_mode_is_exact(coupling):
    full, low = training_flows("float32", "bfloat16", coupling=coupling)
    x = torch.randn(256, DIM) * 2
    z_full, log_det_full = full(x)
    z, log_det = low(x)
    assert z.dtype == torch.float32 and log_det.dtype == torch.float32
    assert not torch.equal(z, z_full)  # the conditioners did run in bfloat16 ...
    torch.testing.assert_close(z, z_full, atol=0.05, rtol=0.05)  # ... and only they (bfloat16 keeps ~3 digits)
    # each coupling's log-det is exact for the map it computes: that of autograd's Jacobian (one layer:
    # the conditioner's bfloat16 gradient only fills the block below the diagonal, which leaves the
    # determinant alone)
    layer = next(t for t in low.transforms if hasattr(t, "conditioner"))
    _, layer_log_det = layer(x[:3])
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[i])
        assert abs(layer_log_det[i].item() - torch.linalg.slogdet(jac.double()).logabsdet.item()) < 1e-4
    # gradients reach every parameter in float32
    (z.square().sum() - log_det.sum()).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in low.parameters() if p.requires_grad)
    # eval mode (encode, decode, evaluation) runs at full precision: the same map, inverted to round-off
    full.eval(), low.eval()
    assert torch.equal(low(x)[0], full(x)[0])
    assert (low.inverse(low(x)[0])[0] - x).abs().max() < 1e-4
    # float64 inputs are never lowered, not even in training mode
    full.train(), low.train()
    x64 = x.double()
    torch.testing.assert_close(low.double()(x64)[0], full.double()(x64)[0], atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="training_precision"):
        RealNVP(DIM, training_precision="float16")


def test_auto_precision_lowers_the_conditioners_exactly_where_the_device_has_bfloat16(monkeypatch):
    full, low, auto = training_flows("float32", "bfloat16", "auto", hidden_size=16, num_blocks=2)
    x = torch.randn(64, DIM)
    expected = low if has_native_bfloat16("cpu") else full
    assert torch.equal(auto(x)[0], expected(x)[0])
    # the decision follows the device the flow runs on, at call time
    import speechbrain_fdnf.lobes.couplings as couplings

    for native, same_as in ((True, low), (False, full)):
        monkeypatch.setattr(couplings, "has_native_bfloat16", lambda device, native=native: native)
        assert torch.equal(auto(x)[0], same_as(x)[0])


def test_a_coupling_is_one_class_and_one_registry_entry(monkeypatch):
    from speechbrain_fdnf.lobes.couplings import COUPLINGS

    class ShiftCoupling(AffineCoupling):  # a "new" coupling: volume-preserving (no scale)
        OPTIONS = ()

        def _scale_shift(self, cond):
            log_scale, shift = super()._scale_shift(cond)
            return torch.zeros_like(log_scale), shift

    monkeypatch.setitem(COUPLINGS, "shift", ShiftCoupling)
    flow = RealNVP(DIM, num_blocks=3, hidden_size=16, coupling="shift", mixing="permute", actnorm=False)
    x = torch.randn(7, DIM)
    z, log_det = flow.encode(x)
    assert all(isinstance(flow.transforms[i], ShiftCoupling) for i in (1, 3, 5))
    assert torch.allclose(log_det, torch.zeros(7)) and torch.allclose(flow.decode(z), x, atol=1e-5)
    with pytest.raises(ValueError, match="coupling must be one of"):
        RealNVP(DIM, coupling="glow")


@pytest.fixture()
def tensorfloat32_on():
    """TensorFloat-32 turned on for CUDA products, as ``import speechbrain`` leaves it; the settings restored after."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_a_flow_multiplies_in_full_float32_where_speechbrain_turned_tensorfloat32_on(tensorfloat32_on):
    from speechbrain_fdnf.lobes.base import InvertibleTransform
    from speechbrain_fdnf.lobes.flows import SequentialFlow

    seen = []

    class Probe(InvertibleTransform):  # records the CUDA products' precision where the flow's transforms run
        def forward(self, x):
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return x, x.new_zeros(x.shape[:-1])

        def inverse(self, z):
            return self.forward(z)

    flow = SequentialFlow([ActNorm(4), Probe(), InvertibleLinear(4)])
    x = torch.randn(5, 4)
    flow.decode(flow.encode(x)[0])
    assert seen == [(False, False)] * 2
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32  # restored after
    with pytest.raises(RuntimeError):  # restored after an error too
        flow.encode(torch.randn(5, 3))
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
