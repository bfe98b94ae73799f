//! Undirected graphs in CSR form (spec C1): `indptr`/`indices` hold both directions of every
//! edge, sorted by neighbour within each row; self-loops are explicit (a graph holds them only
//! when [`Graph::with_self_loops`] added them). The edge list is kept in its input order, so
//! per-edge results (scores, masks) line up with the file they came from.

use thiserror::Error;

/// A bad edge list: what is wrong and on which line (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct EdgeError {
    /// 1-based line of the input (0 for the input as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl EdgeError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// The most nodes a graph may have.
pub const MAX_NODES: usize = 1 << 24;
/// The most edges a graph may have.
pub const MAX_EDGES: usize = 1 << 26;

/// An undirected graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Nodes `0..n`.
    pub n: usize,
    /// The undirected edges `(u, v)`, `u ≠ v`, in input order (each once).
    pub edges: Vec<(u32, u32)>,
    /// CSR row pointers (`n + 1`).
    pub indptr: Vec<u32>,
    /// CSR column indices: both directions of every edge, and a self-loop per node when added.
    pub indices: Vec<u32>,
    /// Whether every node has its self-loop in the CSR.
    pub self_loops: bool,
}

impl Graph {
    /// The graph on `n` nodes with `edges` (no self-loops, no duplicates in either orientation,
    /// ids below n); the error names the offending edge by its 0-based position + 2 (its line in
    /// an edge-list file with a header).
    pub fn new(n: usize, edges: Vec<(u32, u32)>) -> Result<Self, EdgeError> {
        Self::checked(n, edges, |i| i + 2)
    }

    /// [`Graph::new`] with the line of edge i given by `line_of(i)`.
    fn checked(
        n: usize,
        edges: Vec<(u32, u32)>,
        line_of: impl Fn(usize) -> usize,
    ) -> Result<Self, EdgeError> {
        if n > MAX_NODES {
            return Err(EdgeError::at(0, format!("{n} nodes: at most {MAX_NODES}")));
        }
        if edges.len() > MAX_EDGES {
            return Err(EdgeError::at(
                0,
                format!("{} edges: at most {MAX_EDGES}", edges.len()),
            ));
        }
        let mut seen = std::collections::HashMap::with_capacity(edges.len());
        for (i, &(u, v)) in edges.iter().enumerate() {
            let line = line_of(i);
            if u == v {
                return Err(EdgeError::at(line, format!("self-loop {u}-{v}")));
            }
            if u as usize >= n || v as usize >= n {
                return Err(EdgeError::at(
                    line,
                    format!("edge {u}-{v}: node ids must be below {n}"),
                ));
            }
            if let Some(first) = seen.insert((u.min(v), u.max(v)), line) {
                return Err(EdgeError::at(
                    line,
                    format!("duplicate edge {u}-{v} (first on line {first})"),
                ));
            }
        }
        let mut g = Self {
            n,
            edges,
            indptr: vec![],
            indices: vec![],
            self_loops: false,
        };
        g.build_csr();
        Ok(g)
    }

    fn build_csr(&mut self) {
        let mut deg = vec![0u32; self.n];
        for &(u, v) in &self.edges {
            deg[u as usize] += 1;
            deg[v as usize] += 1;
        }
        if self.self_loops {
            deg.iter_mut().for_each(|d| *d += 1);
        }
        let mut indptr = vec![0u32; self.n + 1];
        for i in 0..self.n {
            indptr[i + 1] = indptr[i] + deg[i];
        }
        let mut fill = indptr.clone();
        let mut indices = vec![0u32; indptr[self.n] as usize];
        let mut put = |a: u32, b: u32| {
            let at = &mut fill[a as usize];
            indices[*at as usize] = b;
            *at += 1;
        };
        for &(u, v) in &self.edges {
            put(u, v);
            put(v, u);
        }
        if self.self_loops {
            for i in 0..self.n as u32 {
                put(i, i);
            }
        }
        for i in 0..self.n {
            indices[indptr[i] as usize..indptr[i + 1] as usize].sort_unstable();
        }
        self.indptr = indptr;
        self.indices = indices;
    }

    /// The same graph with a self-loop on every node (GCN's `A + I`).
    pub fn with_self_loops(&self) -> Self {
        let mut g = self.clone();
        g.self_loops = true;
        g.build_csr();
        g
    }

    /// The graph keeping only the edges where `keep` is true (same nodes, same order).
    pub fn subgraph(&self, keep: &[bool]) -> Self {
        let mut g = Self {
            n: self.n,
            edges: self
                .edges
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(e, _)| *e)
                .collect(),
            indptr: vec![],
            indices: vec![],
            self_loops: self.self_loops,
        };
        g.build_csr();
        g
    }

    /// The row sums of the adjacency as stored (self-loops count when present).
    pub fn degrees(&self) -> Vec<f64> {
        (0..self.n)
            .map(|i| f64::from(self.indptr[i + 1] - self.indptr[i]))
            .collect()
    }

    /// The neighbours of `i` (sorted; `i` itself when self-loops are in).
    pub fn neighbours(&self, i: usize) -> &[u32] {
        &self.indices[self.indptr[i] as usize..self.indptr[i + 1] as usize]
    }

    /// GCN's symmetric normalisation of the adjacency with self-loops,
    /// `Â = D^{−1/2}(A + I)D^{−1/2}` (D the degrees of `A + I`), as CSR `(indptr, indices,
    /// values)` — symmetric, so it is its own transpose.
    pub fn normalized_adjacency(&self) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
        let g = if self.self_loops {
            self.clone()
        } else {
            self.with_self_loops()
        };
        let d = g.degrees();
        let mut values = Vec::with_capacity(g.indices.len());
        for i in 0..g.n {
            for &j in g.neighbours(i) {
                values.push((1.0 / (d[i] * d[j as usize]).sqrt()) as f32);
            }
        }
        (g.indptr, g.indices, values)
    }

    /// Nodes without any edge (self-loops aside).
    pub fn isolated(&self) -> usize {
        let mut deg = vec![0u32; self.n];
        for &(u, v) in &self.edges {
            deg[u as usize] += 1;
            deg[v as usize] += 1;
        }
        deg.iter().filter(|d| **d == 0).count()
    }

    /// Parses an edge list: the header `src,dst`, then one `u,v` per line (blank lines and
    /// surrounding spaces allowed). Non-integer or negative ids, self-loops and duplicate edges
    /// (in either orientation) are errors naming the line; with `n` given, so are ids `>= n`.
    /// Without it the graph has `max id + 1` nodes.
    pub fn parse_csv(text: &str, n: Option<usize>) -> Result<Self, EdgeError> {
        let mut lines = text.lines().enumerate();
        let header = lines
            .by_ref()
            .find(|(_, l)| !l.trim().is_empty())
            .ok_or_else(|| EdgeError::at(0, "empty input: expected the header `src,dst`"))?;
        let cells: Vec<&str> = header.1.split(',').map(str::trim).collect();
        if cells != ["src", "dst"] {
            return Err(EdgeError::at(
                header.0 + 1,
                format!("the header must be `src,dst`, got {:?}", header.1.trim()),
            ));
        }
        let mut edges = vec![];
        let mut lines_of = vec![];
        let mut max_id = 0u64;
        for (i, raw) in lines {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() {
                continue;
            }
            let mut parts = l.split(',').map(str::trim);
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(EdgeError::at(
                    line,
                    format!("expected `src,dst`, got {l:?}"),
                ));
            };
            let id = |s: &str| -> Result<u32, EdgeError> {
                if s.starts_with('-') && s[1..].chars().all(|c| c.is_ascii_digit()) && s.len() > 1 {
                    return Err(EdgeError::at(line, format!("negative node id {s}")));
                }
                s.parse::<u32>()
                    .ok()
                    .filter(|&v| (v as usize) < MAX_NODES)
                    .ok_or_else(|| {
                        EdgeError::at(
                            line,
                            format!("node id {s:?} is not an integer in 0..{MAX_NODES}"),
                        )
                    })
            };
            let (u, v) = (id(a)?, id(b)?);
            if let Some(n) = n {
                if u as usize >= n || v as usize >= n {
                    return Err(EdgeError::at(
                        line,
                        format!("edge {u}-{v}: node ids must be below {n}"),
                    ));
                }
            }
            max_id = max_id.max(u64::from(u.max(v)));
            edges.push((u, v));
            lines_of.push(line);
        }
        let n = n.unwrap_or(if edges.is_empty() {
            0
        } else {
            max_id as usize + 1
        });
        // Self-loops and duplicates, reported on their own line.
        Self::checked(n, edges, |i| lines_of[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_holds_both_directions_and_self_loops_on_request() {
        let g = Graph::new(4, vec![(0, 1), (2, 1), (3, 0)]).unwrap();
        assert_eq!(g.neighbours(0), &[1, 3]);
        assert_eq!(g.neighbours(1), &[0, 2]);
        assert_eq!(g.degrees(), vec![2.0, 2.0, 1.0, 1.0]);
        let s = g.with_self_loops();
        assert_eq!(s.neighbours(1), &[0, 1, 2]);
        assert_eq!(s.degrees(), vec![3.0, 3.0, 2.0, 2.0]);
        // Â of the path 0-1 plus isolated 2: rows [1/2, 1/2], [1/2, 1/2], [1].
        let p = Graph::new(3, vec![(0, 1)]).unwrap();
        let (ip, ix, v) = p.normalized_adjacency();
        assert_eq!((ip, ix), (vec![0, 2, 4, 5], vec![0, 1, 0, 1, 2]));
        assert_eq!(v, vec![0.5, 0.5, 0.5, 0.5, 1.0]);
        let sub = g.subgraph(&[true, false, true]);
        assert_eq!(sub.edges, vec![(0, 1), (3, 0)]);
        assert_eq!(sub.isolated(), 1);
    }

    #[test]
    fn bad_edge_lists_name_the_line() {
        let err = |text: &str, n: Option<usize>| Graph::parse_csv(text, n).unwrap_err().to_string();
        assert!(err("a,b\n0,1\n", None).starts_with("line 1: the header"));
        assert_eq!(
            err("src,dst\n0,1\n1,x\n", None),
            "line 3: node id \"x\" is not an integer in 0..16777216"
        );
        assert_eq!(
            err("src,dst\n0,1\n\n1,-2\n", None),
            "line 4: negative node id -2"
        );
        assert_eq!(err("src,dst\n0,1\n2,2\n", None), "line 3: self-loop 2-2");
        assert_eq!(
            err("src,dst\n0,1\n\n1,2\n1,0\n", None),
            "line 5: duplicate edge 1-0 (first on line 2)"
        );
        assert_eq!(
            err("src,dst\n0,1\n1,7\n", Some(5)),
            "line 3: edge 1-7: node ids must be below 5"
        );
        assert_eq!(
            err("src,dst\n0,1,2\n", None),
            "line 2: expected `src,dst`, got \"0,1,2\""
        );
        assert!(err("", None).contains("empty input"));
        let g = Graph::parse_csv("src,dst\n 0 , 3\n2,1\n", None).unwrap();
        assert_eq!((g.n, g.edges.clone()), (4, vec![(0, 3), (2, 1)]));
    }
}
