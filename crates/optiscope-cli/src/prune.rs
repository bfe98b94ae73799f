//! `optiscope prune`: TEDDY's edge sparsification of graph networks (spec C1). `prune scores
//! EDGES.csv` prints every edge's TEDDY score in input order.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use optiscope_core::sparsify::teddy::edge_scores;
use optiscope_core::sparsify::Graph;

use crate::input::bad;

/// Arguments of `optiscope prune` (the help text is on `Command::Prune`).
#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(subcommand)]
    command: PruneCommand,
}

#[derive(Subcommand, Debug)]
enum PruneCommand {
    /// Print the TEDDY score of every edge of an edge list as CSV `src,dst,score`.
    ///
    /// The input: the header `src,dst`, then one edge `u,v` per line (undirected; node ids are
    /// integers from 0; self-loops, duplicate edges in either orientation, negative or
    /// non-integer ids are errors that name the line). The output: the header `src,dst,score`,
    /// then one line per input edge in input order. `score(u, v) = g_u · g_v` with
    /// `g_i = (Σ_{k∈N(i)} d_k^{−1/2}) / d_i²`; TEDDY prunes the lowest scores first.
    #[command(verbatim_doc_comment)]
    Scores {
        /// The edge list (`-` reads standard input).
        #[arg(value_name = "EDGES.csv")]
        edges: PathBuf,
        /// The number of nodes (ids must be below it) [default: the largest id + 1].
        #[arg(long, value_name = "N")]
        nodes: Option<usize>,
    },
}

/// `optiscope prune`.
pub fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PruneCommand::Scores { edges, nodes } => {
            let name = edges.display().to_string();
            let text = if name == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| bad(format!("cannot read standard input: {e}")))?
            } else {
                std::fs::read_to_string(&edges)
                    .map_err(|e| bad(format!("cannot read {name}: {e}")))?
            };
            let graph = Graph::parse_csv(&text, nodes).map_err(|e| bad(format!("{name}: {e}")))?;
            let scores = edge_scores(&graph);
            let mut out = BufWriter::new(std::io::stdout().lock());
            writeln!(out, "src,dst,score")?;
            for (&(u, v), s) in graph.edges.iter().zip(&scores) {
                writeln!(out, "{u},{v},{s}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
