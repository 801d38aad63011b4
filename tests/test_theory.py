"""augflat.theory against closed forms: a linear model whose Jacobian singular values are chosen by construction
(W = U diag(s) Vᵀ), quadratic losses with known Hessians, and exact second-order behaviour of a small CNN."""
import math
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

from augflat.theory import (per_sample_jacobians, linear_model_with_singular_values, singular_values, sigma_min_nonzero,
                            compensating_input, compensating_params, compensatory_radii, model_compensatory_radii,
                            flat_params, unflatten_params, flatness_radius, first_crossing_radius, uniform_ball,
                            fit_small, total_variation, log_covering_number, vc_term, theorem3_bound)
from augflat.core import AugflatError



@pytest.fixture
def linear():
    s = torch.tensor([6., 3., 1., .1], dtype=torch.float64)
    lin = linear_model_with_singular_values(s, d=9, seed=3)
    x = torch.randn(25, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return s, lin, x


def test_linear_jacobians_closed_form(linear):
    s, lin, x = linear
    J = per_sample_jacobians(lin, x, chunk_size=7)
    assert J['input'].shape == (25, 4, 9) and J['params'].shape == (25, 4, 4 * 9 + 4)
    sx, rx = singular_values(J['input'])
    torch.testing.assert_close(sx, s.expand(25, 4), rtol=1e-10, atol=1e-12)
    st, rt = singular_values(J['params'])
    torch.testing.assert_close(st, (x.square().sum(1, keepdim=True) + 1).sqrt().expand(25, 4), rtol=1e-10, atol=1e-12)
    assert (rx == 4).all() and (rt == 4).all()


def test_radii_closed_form(linear):
    s, lin, x = linear
    J = per_sample_jacobians(lin, x)
    R = compensatory_radii(J['input'], J['params'])
    nx = (x.square().sum(1) + 1).sqrt()
    assert math.isclose(R['param_to_input'], nx.max().item() / 0.1, rel_tol=1e-9)
    assert math.isclose(R['input_to_param'], 6. / nx.min().item(), rel_tol=1e-9)
    assert math.isclose(R['param_to_input_tight'], R['param_to_input'], rel_tol=1e-9)
    assert math.isclose(R['theorem2_radius_per_r'], 0.1 / nx.max().item(), rel_tol=1e-9)
    assert R['full_rank'] and R['n_samples'] == 25
    Rm = model_compensatory_radii(lin, x, chunk_size=4)
    for k in ('param_to_input', 'input_to_param', 'param_to_input_tight', 'input_to_param_tight', 'sx_min', 'st_max'):
        assert math.isclose(Rm[k], R[k], rel_tol=1e-9)


def test_theorem1_exact_on_linear_model(linear):
    "Compensation reproduces outputs to float64 precision and stays inside Theorem 1's balls (A and B)."
    s, lin, x = linear
    J = per_sample_jacobians(lin, x); jx, jt = J['input'], J['params']
    R = compensatory_radii(jx, jt)
    theta0 = flat_params(lin)
    g = torch.Generator().manual_seed(1)
    for rho in (1e-3, 0.3, 10.):
        delta = torch.randn(theta0.numel(), generator=g, dtype=torch.float64); delta *= rho / delta.norm()
        eps = compensating_input(jx, jt, delta)
        assert eps.norm(dim=1).max() <= rho * R['param_to_input_tight'] * (1 + 1e-12)
        out_p = functional_call(lin, unflatten_params(lin, theta0 + delta), (x,))
        torch.testing.assert_close(lin(x + eps), out_p, rtol=0, atol=1e-11 * max(1, rho))
        e = torch.randn(25, 9, generator=g, dtype=torch.float64); e *= rho / e.norm(dim=1, keepdim=True)
        dl = compensating_params(jx, jt, e)
        assert dl.norm(dim=1).max() <= rho * R['input_to_param'] * (1 + 1e-12)
        for k in (0, 13):
            out = functional_call(lin, unflatten_params(lin, theta0 + dl[k]), (x[k:k+1],))
            torch.testing.assert_close(out, lin(x[k:k+1] + e[k:k+1]), rtol=0, atol=1e-11 * max(1, rho))


def test_rank_deficiency_reported():
    lin = linear_model_with_singular_values([2., 0.], d=5)
    x = torch.randn(3, 5, dtype=torch.float64)
    J = per_sample_jacobians(lin, x)
    s, rank = singular_values(J['input'])
    assert (rank == 1).all() and torch.allclose(sigma_min_nonzero(s, rank), torch.full((3,), 2., dtype=s.dtype))
    assert not compensatory_radii(J['input'], J['params'])['full_rank']
    with pytest.raises(AugflatError):
        linear_model_with_singular_values([1., 1., 1.], d=2)


def test_cnn_second_order():
    """On a smooth (tanh) float64 CNN the compensation mismatch is second order: ~100x smaller per 10x smaller radius
    (ReLU nets are second order only on average over activation switches: see the Theorem 1 notebook)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)).double().eval()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    J = per_sample_jacobians(net, x)
    theta0, buffers = flat_params(net), dict(net.named_buffers())
    u = torch.randn(theta0.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(1)); u /= u.norm()
    def mismatch(rho):
        eps = compensating_input(J['input'], J['params'], rho * u).view_as(x)
        with torch.no_grad():
            return (net(x + eps) - functional_call(net, (unflatten_params(net, theta0 + rho * u), buffers), (x,))).norm().item()
    m1, m2 = mismatch(1e-2), mismatch(1e-3)
    assert 30 < m1 / m2 < 300, (m1, m2)


def test_flatness_radius_quadratic():
    "At an exact minimum of a quadratic, the radius along u is sqrt(2κ / uᵀHu); the top Hessian direction gives λ_max."
    reg = nn.Linear(4, 1, bias=False).double()
    x = torch.randn(300, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * torch.tensor([3., 1., .5, .2], dtype=torch.float64)
    y = reg(x).detach()
    mse = lambda out, t: 0.5 * (out - t).square().sum(-1).mean()
    H = x.T @ x / len(x)
    fr = flatness_radius(reg, x, y, kappa=0.02, n_random=3, hessian_iters=40, loss_fn=mse, rel_tol=1e-6)
    assert math.isclose(fr['hessian'], math.sqrt(2 * 0.02 / torch.linalg.eigvalsh(H)[-1].item()), rel_tol=1e-3)
    assert fr['radius'] == fr['hessian'] and all(r >= fr['hessian'] for r in fr['random'])
    assert math.isclose(first_crossing_radius(lambda r: 3 * r, kappa=1.5, rel_tol=1e-8), 0.5, rel_tol=1e-6)


def test_flatness_radius_gradient_direction():
    "Off the minimum, along the unit gradient u of L = ½‖θ−θ*‖² (H = I): increase(ρ) = ρ‖g‖ + ρ²/2."
    reg = nn.Linear(3, 1, bias=False).double()
    x = torch.eye(3, dtype=torch.float64) * math.sqrt(3)       # H = xᵀx / n = I
    with torch.no_grad(): reg.weight.copy_(torch.tensor([[1., 0., 0.]]))
    y = torch.zeros(3, 1, dtype=torch.float64)                  # θ* = 0, g = θ
    mse = lambda out, t: 0.5 * (out - t).square().sum(-1).mean()
    fr = flatness_radius(reg, x, y, kappa=0.5, n_random=0, loss_fn=mse, rel_tol=1e-7)
    assert math.isclose(fr['gradient'], -1 + math.sqrt(2.), rel_tol=1e-5)   # ρ + ρ²/2 = 0.5


def test_uniform_ball_and_fit_small():
    g = torch.Generator().manual_seed(0)
    e = uniform_ball(50000, 3, 2.0, g, dtype=torch.float64)
    n = e.norm(dim=1)
    assert n.max() <= 2.0 and abs(n.mean().item() - 2.0 * 3 / 4) < 0.01
    assert abs((n <= 1.0).double().mean().item() - 1 / 8) < 0.01
    x = torch.randn(80, 4, generator=g); y = (x[:, 1] > 0).long()
    m = fit_small(nn.Linear(4, 2), x, y, steps=150, lr=5e-2, noise_radius=0.1)
    assert (m(x).argmax(1) == y).float().mean() > 0.9


def test_theorem3_terms():
    assert total_variation(np.ones(4) / 4, np.ones(4) / 4) == 0
    assert math.isclose(total_variation(np.array([1., 0]), np.array([0, 1.])), 1.0)
    assert math.isclose(log_covering_number(3., 1., 2), math.log(10.))
    m, v, lnN, d = 500, 3, 7.0, 0.05
    assert math.isclose(vc_term(m, v, lnN, d), math.sqrt((v * math.log(m / v) + lnN - math.log(d)) / m))
    b = theorem3_bound(0.05, 0.1, m, v, lnN, d)
    assert math.isclose(b['bound'], 0.15 + b['complexity'])
    assert theorem3_bound(0., 0., m, v, log_covering_number(2., 0., 3))['bound'] == math.inf
