"""The paired deciders on simulated pairs with a known difference: 95% intervals cover it about 95% of the time, a
large difference is decided (in the right direction), no difference stays undecided. About 20 s in all on 2 busy cores."""
import math
import numpy as np
import pytest
from augflat.core import AugflatError
from augflat.evidence import (mcnemar, paired_bootstrap, bootstrap_statistic, seed_difference, verdict,
                              flatness_decision, paired_decision, image_scores)
from augflat.reproduce import noise_margin


def correlated_events(rng, n, p_a, p_b, rho=0.7):
    "Per-image yes/no outcomes of two models that share most of their difficulty (as two nets on one test set do)."
    shared, copy = rng.random(n), rng.random(n) < rho
    return np.where(copy, shared < p_a, rng.random(n) < p_a), np.where(copy, shared < p_b, rng.random(n) < p_b)


def run(decide, draw, truth, runs):
    "(coverage of `truth` by the intervals, list of verdicts 'a lower than b') over `runs` simulated runs."
    hits, verdicts = 0, []
    for _ in range(runs):
        d = decide(*draw())
        hits += d['ci'][0] <= truth <= d['ci'][1]; verdicts.append(verdict(d))
    return hits / runs, verdicts


def test_mcnemar_coverage_power_and_null():
    rng = np.random.default_rng(0)
    cov, _ = run(mcnemar, lambda: correlated_events(rng, 400, 0.35, 0.30), 5.0, 500)
    assert 0.92 <= cov <= 0.98, cov
    _, null = run(mcnemar, lambda: correlated_events(rng, 400, 0.30, 0.30), 0.0, 500)
    assert null.count(None) / 500 >= 0.93, null.count(None)           # a 95% test: ≤ ~5% false decisions
    _, big = run(mcnemar, lambda: correlated_events(rng, 1000, 0.30, 0.40), -10.0, 100)
    assert big.count(True) / 100 >= 0.95 and big.count(False) == 0     # a lower error rate, decided as lower


def test_full_agreement_is_not_certainty():
    "Two models that agree on all of a few images have not been shown equal: the interval stays wide."
    same = np.zeros(10, bool)
    d = mcnemar(same, same)
    assert d['ci'][0] < -25 and d['ci'][1] > 25 and verdict(d) is None      # ±100·(1 − 0.025^(1/10)) ≈ ±30.8
    big = mcnemar(np.zeros(10000, bool), np.zeros(10000, bool))
    assert 0 < big['ci'][1] < 0.05                                           # 10,000 agreements: within ±0.037 points
    scores = np.full(10, 100.0)
    assert paired_bootstrap(scores, scores, score_range=100)['ci'][1] > 25


def test_paired_is_tighter_than_unpaired_margin():
    "The reason for pairing: correlated models on the same images give a much narrower interval."
    rng = np.random.default_rng(1)
    a, b = correlated_events(rng, 500, 0.45, 0.40, rho=0.8)
    d = mcnemar(a, b)
    half = (d['ci'][1] - d['ci'][0]) / 2
    assert half < 0.6 * noise_margin(100 * b.mean(), 500), (half, noise_margin(100 * b.mean(), 500))


def test_paired_bootstrap_coverage_power_and_null():
    rng = np.random.default_rng(2)
    def draw(shift, n=300):
        difficulty = rng.beta(2, 3, n)                      # per-image mean error over 75 corruption cells
        a = rng.binomial(75, difficulty) / 75 * 100
        b = rng.binomial(75, np.clip(difficulty + shift, 0, 1)) / 75 * 100
        return a, b
    d = np.random.default_rng(9).beta(2, 3, 10 ** 6)
    truth = -100 * float(np.mean(np.clip(d + 0.02, 0, 1) - d))          # ≈ -2 points (the clip at 1 is rare)
    boot = lambda a, b: paired_bootstrap(a, b, n_boot=400, seed=int(rng.integers(1 << 30)))
    cov, _ = run(boot, lambda: draw(0.02), truth, 300)
    assert 0.91 <= cov <= 0.98, cov
    _, null = run(boot, lambda: draw(0.0), 0.0, 200)
    assert null.count(None) / 200 >= 0.9
    _, big = run(boot, lambda: draw(0.06), -6.0, 50)
    assert big.count(True) / 50 >= 0.95


def test_bootstrap_statistic_of_several_means():
    rng = np.random.default_rng(3)
    base = rng.random(400) * 50
    s = dict(x=base + 3 + rng.normal(0, 1, 400), y=base + rng.normal(0, 1, 400), z=base + 1 + rng.normal(0, 1, 400))
    d = bootstrap_statistic(s, lambda m: np.minimum(m['x'] - m['y'], m['x'] - m['z']), n_boot=1000)
    assert d['ci'][0] < d['diff'] < d['ci'][1] and 1.5 < d['ci'][0] and d['ci'][1] < 2.5   # min(3, 2) = 2
    assert bootstrap_statistic(s, lambda m: m['x'] - m['y'], n_boot=300, seed=4) == \
        bootstrap_statistic(s, lambda m: m['x'] - m['y'], n_boot=300, seed=4)            # seeded


def test_flatness_difference_coverage():
    rng = np.random.default_rng(5)
    one = lambda: (20 + rng.normal(0, 0.3, 1), 19.2 + rng.normal(0, 0.4, 1))
    decide = lambda a, b: seed_difference(a, [0.3] * len(a), b, [0.4] * len(b))
    cov, _ = run(decide, one, 0.8, 2000)
    assert 0.935 <= cov <= 0.965, cov
    seeds = lambda: (20 + rng.normal(0, 0.6, 3), 19.2 + rng.normal(0, 0.6, 3))   # seed spread beyond the MC error
    cov3, _ = run(lambda a, b: seed_difference(a, [0.1] * 3, b, [0.1] * 3), seeds, 0.8, 1000)
    assert 0.93 <= cov3 <= 0.98, cov3
    _, big = run(decide, lambda: (20 + rng.normal(0, 0.3, 1), 16 + rng.normal(0, 0.4, 1)), 4.0, 100)
    assert big.count(False) == 100          # a is decidedly higher (sharper): "a flatter than b" not held


def test_flatness_without_errors_is_undecided():
    d = flatness_decision([None], [dict(se=0.1)], [1.0], [2.0])
    assert d['reason'] == "no Monte-Carlo error recorded" and verdict(d) is None
    assert 'bound' in flatness_decision([dict(se=0.1, reached=False)], [dict(se=0.1)], [1.0], [2.0])['reason']


def test_bad_inputs_are_clear_errors():
    with pytest.raises(AugflatError, match="same images"): mcnemar(np.ones(5, bool), np.ones(4, bool))
    with pytest.raises(AugflatError, match="same images"): paired_bootstrap(np.ones(5), np.ones(6))
    with pytest.raises(AugflatError, match="finite"): seed_difference([1.0], [math.inf], [1.0], [0.1])
    with pytest.raises(AugflatError, match="one standard error per value"): seed_difference([1.0, 2.0], [0.1], [1.0], [0.1])


def test_paired_decision_needs_the_same_images():
    pa = {'pgd/index': np.arange(10), 'pgd/linf': np.ones(10, bool)}
    pb = {'pgd/index': np.arange(1, 11), 'pgd/linf': np.zeros(10, bool)}
    assert paired_decision([pa], [pb], 'pgd_linf_err')['reason'] == "the two models were scored on different images"
    assert paired_decision([pa], [pa], 'mce')['reason'] == "no per-image mce results"
    assert image_scores(pa, 'pgd_linf_err')[2] is True


def test_bootstrap_on_few_images_decides_nothing():
    "Below 30 images the percentile interval undercovers: it is reported, never used for a verdict."
    a, b = np.arange(10.0), np.arange(10.0) + 50
    d = paired_bootstrap(a, b, n_boot=200)
    assert d['ci'][1] < 0 and verdict(d) is None and 'too few' in d['undecided']


def test_flatness_with_an_infinite_monte_carlo_error_is_undecided_not_an_error():
    "Two draws can leave the delta-method se infinite (a dry run does): the claim is undecided with its reason."
    from augflat.evidence import flatness_decision, verdict
    inf = dict(se=float('inf'), ci95=[0., 1.], reached=True, se_target_met=False)
    ok = dict(se=0.1, ci95=[1.8, 2.2], reached=True, se_target_met=True)
    d = flatness_decision([inf], [ok], [3.0], [2.0])
    assert 'infinite' in d['reason'] and verdict(d) is None
    assert verdict(flatness_decision([ok], [ok], [3.0], [2.0]), lower_is_better=False) is True
