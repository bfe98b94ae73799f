//! TEDDY's one-shot edge sparsification (spec C1; Seo, Yun, Yang, ICLR 2024) and the ℓ0-ball
//! projection of its weights.
//!
//! With `d_i` the row sum of the adjacency as stored, `ḡ_i = (Σ_{k∈N(i)} d_k^{−1/2}) / d_i` (the
//! mean inverse-square-root degree of i's neighbours) and `g_i = ḡ_i / d_i`, an edge scores
//! `g_i · g_j`; the lowest-scoring edges go first (edges whose endpoints, and whose endpoints'
//! neighbours, have high degree). Self-loops are never pruned. Pruning is nested across levels:
//! an edge pruned at one level stays pruned at every higher one.

/// Per-node `g_i` of `graph` (0 for an isolated node).
pub fn node_scores(graph: &super::graph::Graph) -> Vec<f64> {
    let d = graph.degrees();
    (0..graph.n)
        .map(|i| {
            if d[i] == 0.0 {
                return 0.0;
            }
            let s: f64 = graph
                .neighbours(i)
                .iter()
                .map(|&k| d[k as usize].powf(-0.5))
                .sum();
            s / (d[i] * d[i])
        })
        .collect()
}

/// The score `g_u · g_v` of every edge of `graph`, in its edge order.
pub fn edge_scores(graph: &super::graph::Graph) -> Vec<f64> {
    let g = node_scores(graph);
    graph
        .edges
        .iter()
        .map(|&(u, v)| g[u as usize] * g[v as usize])
        .collect()
}

/// The edges in pruning order: lowest score first, ties by edge index (a stable sort).
pub fn prune_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

/// Nested keep-masks, one per fraction of edges removed (each `⌊E·p⌋` edges, in `order`): the
/// edges removed at a level are a superset of those removed at every lower one, whatever order
/// the fractions come in.
pub fn nested_masks(order: &[usize], fractions: &[f64]) -> Vec<Vec<bool>> {
    let e = order.len();
    fractions
        .iter()
        .map(|&p| {
            let removed = ((e as f64) * p.clamp(0.0, 1.0)).floor() as usize;
            let mut keep = vec![true; e];
            for &i in &order[..removed.min(e)] {
                keep[i] = false;
            }
            keep
        })
        .collect()
}

/// The projection onto the ℓ0 ball keeping the `⌈len·keep_frac⌉` entries largest in magnitude
/// (ties: the earlier entry stays), in place over all of `values` jointly; returns how many were
/// kept.
pub fn l0_project(values: &mut [f32], keep_frac: f64) -> usize {
    let n = values.len();
    let keep = ((n as f64) * keep_frac.clamp(0.0, 1.0)).ceil() as usize;
    if keep >= n {
        return n;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    for &i in &order[keep..] {
        values[i] = 0.0;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::super::graph::Graph;
    use super::*;

    #[test]
    fn the_spec_vectors() {
        // Spec C1: 6 nodes, edges (0,1),(0,2),(0,3),(1,2),(3,4),(4,5).
        let g = Graph::new(6, vec![(0, 1), (0, 2), (0, 3), (1, 2), (3, 4), (4, 5)]).unwrap();
        assert_eq!(g.degrees(), vec![3.0, 2.0, 2.0, 2.0, 2.0, 1.0]);
        let want_g = [
            0.2357023,
            0.3211143,
            0.3211143,
            0.3211143,
            0.4267767,
            std::f64::consts::FRAC_1_SQRT_2,
        ];
        for (a, b) in node_scores(&g).iter().zip(want_g) {
            assert!((a - b).abs() < 5e-8, "{a} vs {b}");
        }
        let want = [
            0.0756874, 0.0756874, 0.0756874, 0.1031144, 0.1370441, 0.3017767,
        ];
        let s = edge_scores(&g);
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 5e-8, "{a} vs {b}");
        }
        assert_eq!(prune_order(&s), vec![0, 1, 2, 3, 4, 5]);
        let mut v = [0.3, -1.2, 0.05, 0.8, -0.4, 0.0, 2.0, -0.06];
        assert_eq!(l0_project(&mut v, 0.5), 4);
        assert_eq!(v, [0.0, -1.2, 0.0, 0.8, -0.4, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn scores_are_symmetric_and_fall_with_degree_and_masks_nest() {
        // A star centre with more leaves scores its edges lower (neighbour degrees fixed at 1).
        let star = |leaves: u32| {
            let g =
                Graph::new(leaves as usize + 1, (1..=leaves).map(|l| (0, l)).collect()).unwrap();
            edge_scores(&g)[0]
        };
        assert!(star(2) > star(3) && star(3) > star(5) && star(5) > star(9));
        // Symmetric: the edge list reversed gives the same scores.
        let edges = vec![(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (1, 4)];
        let g = Graph::new(5, edges.clone()).unwrap();
        let r = Graph::new(5, edges.iter().map(|&(u, v)| (v, u)).collect()).unwrap();
        assert_eq!(edge_scores(&g), edge_scores(&r));
        let order = prune_order(&edge_scores(&g));
        let masks = nested_masks(&order, &[0.7, 0.3, 0.5]);
        let removed = |m: &Vec<bool>| m.iter().filter(|k| !**k).count();
        assert_eq!(masks.iter().map(removed).collect::<Vec<_>>(), vec![4, 1, 3]);
        for (hi, lo) in [(0, 2), (2, 1)] {
            assert!(masks[hi].iter().zip(&masks[lo]).all(|(h, l)| !*h || *l));
        }
    }
}
