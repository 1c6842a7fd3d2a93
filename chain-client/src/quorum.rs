//! k-of-n votes over what the endpoints answered.
//!
//! Invariant: an answer (the bytes an `eth_call` returned, or the summary of a block) decides
//! only if at least k endpoints gave it and no other answer has k. Fewer than k lying endpoints
//! therefore never decide; with k > n/2 a minority of them is out-voted; with k ≤ n/2 two
//! different answers are a disagreement, never a choice. Errors are not votes.

use crate::error::ChainError;
use std::collections::BTreeMap;

/// The outcome of a vote.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Winner<T> {
    /// Exactly one answer has k or more votes.
    One(T),
    /// Different answers and none decides: two reach k, or none does.
    Contested,
    /// A single answer (or none) with fewer than k votes.
    None,
}

/// The vote over `answers` (answer -> who gave it) with threshold `k`.
pub(crate) fn winner<K: Clone + Ord, V>(answers: &BTreeMap<K, Vec<V>>, k: usize) -> Winner<K> {
    let mut decided = answers.iter().filter(|(_, votes)| votes.len() >= k);
    match (decided.next(), decided.next()) {
        (Some((answer, _)), None) => Winner::One(answer.clone()),
        (Some(_), Some(_)) => Winner::Contested,
        (None, _) if answers.len() > 1 => Winner::Contested,
        (None, _) => Winner::None,
    }
}

/// Too few answers: with a single endpoint its own error (it says more), else `NoQuorum`.
pub(crate) fn too_few(
    needed: usize,
    answered: usize,
    mut errors: Vec<ChainError>,
    n: usize,
) -> ChainError {
    if n == 1 && errors.len() == 1 {
        if let Some(e) = errors.pop() {
            return e;
        }
    }
    ChainError::NoQuorum {
        needed,
        answered,
        errors: errors.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes(v: &[(&'static str, usize)]) -> BTreeMap<&'static str, Vec<usize>> {
        v.iter().map(|&(a, n)| (a, (0..n).collect())).collect()
    }

    #[test]
    fn only_an_uncontested_answer_with_k_votes_decides() {
        assert_eq!(winner(&votes(&[("a", 2), ("b", 1)]), 2), Winner::One("a"));
        assert_eq!(winner(&votes(&[("a", 3)]), 2), Winner::One("a"));
        assert_eq!(winner(&votes(&[("a", 2), ("b", 2)]), 2), Winner::Contested);
        assert_eq!(winner(&votes(&[("a", 1), ("b", 1)]), 1), Winner::Contested);
        assert_eq!(winner(&votes(&[("a", 1), ("b", 1)]), 2), Winner::Contested);
        assert_eq!(winner(&votes(&[("a", 1)]), 2), Winner::None);
        assert_eq!(winner(&votes(&[]), 1), Winner::None);
    }
}
