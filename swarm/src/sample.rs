//! Allocation-free random sampling of `k` distinct indices out of `m`: a random start and a
//! random stride coprime to `m`, so `start + j * stride (mod m)` never repeats within `m` steps.

use rand::Rng;

/// Calls `emit` with `min(k, m)` distinct indices in `0..m`: all of them, in order, if `k >= m`,
/// else a random sample.
pub(crate) fn sample(m: usize, k: usize, mut emit: impl FnMut(usize)) {
    if k >= m {
        (0..m).for_each(emit);
        return;
    }
    if k == 0 {
        return;
    }
    // Here 1 <= k < m, so m >= 2.
    let mut rng = rand::rng();
    let mut i = rng.random_range(0..m);
    let stride = coprime_stride(&mut rng, m);
    for _ in 0..k {
        emit(i);
        // i, stride < m, so one subtraction keeps i in range without overflow.
        i += stride;
        if i >= m {
            i -= m;
        }
    }
}

/// A random stride in `1..m` coprime to `m` (`m >= 2`).
fn coprime_stride(rng: &mut impl Rng, m: usize) -> usize {
    if m < 3 {
        return 1;
    }
    let mut g = rng.random_range(1..m);
    // Terminates: 1 is coprime to m, and coprimes are never far apart.
    while gcd(g, m) != 1 {
        g = if g + 1 >= m { 1 } else { g + 1 };
    }
    g
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn strides_are_coprime() {
        let mut rng = rand::rng();
        for m in 2..300 {
            for _ in 0..20 {
                let g = coprime_stride(&mut rng, m);
                assert!((1..m).contains(&g) && gcd(g, m) == 1, "m={m} g={g}");
            }
        }
    }

    #[test]
    fn samples_are_distinct_and_in_range() {
        for m in 0..80 {
            for k in 0..90 {
                let mut got = Vec::new();
                sample(m, k, |i| got.push(i));
                assert_eq!(got.len(), k.min(m));
                assert!(got.iter().all(|&i| i < m));
                assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
            }
        }
    }
}
