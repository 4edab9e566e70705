//! BEP 12 tier order: trackers are tried tier by tier; each tier is shuffled once, and a tracker
//! that answers moves to the front of its tier.

use rand::seq::SliceRandom as _;

use super::{AnnounceRequest, AnnounceResponse, TrackerClient, TrackerError};

/// An announce-list in BEP 12 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// The tiers of an announce-list, each shuffled once (empty tiers dropped).
    pub fn new(tiers: Vec<Vec<String>>) -> Self {
        let mut rng = rand::rng();
        let tiers = tiers
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(|mut t| {
                t.shuffle(&mut rng);
                t
            })
            .collect();
        Self { tiers }
    }

    /// The tiers as they are now ordered.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Records that the tracker at `(tier, index)` answered: it moves to the front of its tier.
    pub fn promote(&mut self, tier: usize, index: usize) {
        if let Some(t) = self.tiers.get_mut(tier) {
            if index < t.len() {
                let url = t.remove(index);
                t.insert(0, url);
            }
        }
    }

    /// Announces to each tracker in order until one answers; that one is promoted. The URL that
    /// answered and its reply, or the last error ([`TrackerError::NoTracker`] when there is none).
    pub async fn announce(
        &mut self,
        client: &TrackerClient,
        req: &AnnounceRequest,
    ) -> Result<(String, AnnounceResponse), TrackerError> {
        let mut last = TrackerError::NoTracker;
        for ti in 0..self.tiers.len() {
            for i in 0..self.tiers[ti].len() {
                let url = self.tiers[ti][i].clone();
                match client.announce(&url, req).await {
                    Ok(r) => {
                        self.promote(ti, i);
                        return Ok((url, r));
                    }
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_within_tiers_and_promotes() {
        let mut t = Tiers::new(vec![
            vec!["a".into(), "b".into(), "c".into()],
            vec![],
            vec!["d".into()],
        ]);
        assert_eq!(t.tiers().len(), 2);
        let mut first: Vec<_> = t.tiers()[0].clone();
        first.sort();
        assert_eq!(first, ["a", "b", "c"]);
        let moved = t.tiers()[0][2].clone();
        t.promote(0, 2);
        assert_eq!(t.tiers()[0][0], moved);
        t.promote(5, 0);
        t.promote(1, 3);
        assert_eq!(t.tiers()[1], ["d"]);
    }

    #[tokio::test]
    async fn falls_through_to_next_tier() {
        let mut t = Tiers::new(vec![vec!["https://x/announce".into()], vec!["bad".into()]]);
        let client = TrackerClient::default();
        let req0 = AnnounceRequest::new([0; 20].into(), [0; 20].into(), 1, 0);
        assert!(matches!(
            Tiers::new(vec![]).announce(&client, &req0).await,
            Err(TrackerError::NoTracker)
        ));
        let req = AnnounceRequest::new([0; 20].into(), [0; 20].into(), 1, 0);
        assert!(matches!(
            t.announce(&client, &req).await,
            Err(TrackerError::Url(_))
        ));
    }
}
