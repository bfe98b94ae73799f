#!/usr/bin/env python3
"""Numbers that optiscope-core's Rust tests compare against, computed in float64 by the independent
numpy reference of this folder (reference.py). Rerun to see where each number comes from:

    python3 tests/replay/vectors.py

- muon_vectors.rs `conv_filters_use_the_flattened_shape`: one Muon step (lr 0.1, no momentum) on a
  conv filter [4, 1, 3, 1]: orthogonalized as the [4, 3] matrix with the shape factor sqrt(4/3) of
  that matrix (the unflattened kh/kw reading would give sqrt(3)).
- muon_vectors.rs `stacks_are_orthogonalized_matrix_by_matrix`: the same step on a stack [2, 3, 2]:
  two 3x2 matrices, each with the factor sqrt(3/2) (the [2, 6] reading differs).
- orthogonalize.rs `polar_express_matches_an_independent_vector`: Polar Express (5 iterations) of
  G = [[1, 2, 3], [-1, 0.5, 0.25]].
"""
import numpy as np

import reference as ref


def inputs(n):
    data = [((i * 37 % 17) - 8) / 10 for i in range(n)]
    grad = [((i * 11 % 13) - 6) / 7 for i in range(n)]
    return data, grad


def muon_one_step(shape):
    data, grad = inputs(int(np.prod(shape)))
    trace = {"optimizer": {"name": "muon", "lr": 0.1, "momentum": 0.0, "nesterov": False},
             "params": {"w": {"shape": shape, "data": data}}, "grads": [{"w": grad}]}
    return np.ravel(ref.replay(trace)["steps"][0]["params"]["w"])


def show(label, values):
    print(f"{label}:")
    print("    [" + ", ".join(f"{v:.10g}" for v in values) + "]")


def main():
    show("muon conv [4, 1, 3, 1], one step", muon_one_step([4, 1, 3, 1]))
    show("muon stack [2, 3, 2], one step", muon_one_step([2, 3, 2]))
    G = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]])
    show("polar express (5 steps) of [[1, 2, 3], [-1, 0.5, 0.25]]", ref.polar_express(G, 5).ravel())
    show("polar express coefficients", np.ravel(ref.POLAR_EXPRESS_COEFFICIENTS))


if __name__ == "__main__":
    main()
