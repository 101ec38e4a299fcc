//! SIGHUP reload: new detection settings, allow-lists and baseline reach the running workers and
//! shards without rebuilding their tables.
//!
//! The main thread builds a [`Reloadable`] from the new config and publishes it; each worker and
//! shard holds a [`Follower`] and checks one atomic generation counter per batch, so the hot path
//! pays a relaxed load per batch and no lock. Sections that size tables or own sockets (capture,
//! pipeline, tcp, state, metrics, export, live) are not reloadable: a change there is reported and
//! left for a restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::{Config, DetectConfig};
use crate::detect::allowlist::Allowlist;

/// The settings a reload replaces.
#[derive(Debug)]
pub struct Reloadable {
    /// Thresholds, weights and the learned baseline (already loaded).
    pub detect: DetectConfig,
    pub allowlist: Arc<Allowlist>,
    /// Known-bad domain lists (already loaded).
    pub reputation: Arc<crate::reputation::Reputation>,
}

impl Reloadable {
    pub fn from_config(cfg: &Config) -> Self {
        Reloadable {
            detect: cfg.detect.clone(),
            allowlist: Arc::new(Allowlist::new(cfg.allowlist.builtin, &cfg.allowlist.extra)),
            reputation: cfg.reputation.loaded.0.clone(),
        }
    }
}

/// Where reloads are published.
#[derive(Debug)]
pub struct ReloadHandle {
    generation: AtomicU64,
    current: Mutex<Arc<Reloadable>>,
}

impl ReloadHandle {
    pub fn new(cfg: &Config) -> Arc<Self> {
        Arc::new(ReloadHandle {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(Reloadable::from_config(cfg))),
        })
    }

    /// Number of reloads published.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn current(&self) -> Arc<Reloadable> {
        match self.current.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Publishes the reloadable part of `cfg` (validated and with its baseline loaded).
    pub fn publish(&self, cfg: &Config) {
        let r = Arc::new(Reloadable::from_config(cfg));
        match self.current.lock() {
            Ok(mut c) => *c = r,
            Err(p) => *p.into_inner() = r,
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn follower(self: &Arc<Self>) -> Follower {
        Follower { handle: self.clone(), seen: self.generation() }
    }
}

/// A worker's or shard's subscription.
#[derive(Debug)]
pub struct Follower {
    handle: Arc<ReloadHandle>,
    seen: u64,
}

impl Follower {
    /// The settings in force now.
    pub fn current(&self) -> Arc<Reloadable> {
        self.handle.current()
    }

    /// The new settings, once per publication.
    pub fn poll(&mut self) -> Option<Arc<Reloadable>> {
        let g = self.handle.generation();
        if g == self.seen {
            return None;
        }
        self.seen = g;
        Some(self.handle.current())
    }
}

/// The sections that differ between `old` and `new` but only take effect on restart.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("capture", old.capture != new.capture),
        ("pipeline", old.pipeline != new.pipeline),
        ("tcp", old.tcp != new.tcp),
        ("state", old.state != new.state),
        ("metrics", old.metrics != new.metrics),
        ("export", old.export != new.export),
        ("live", old.live != new.live),
        ("outputs", old.outputs != new.outputs),
    ]
    .into_iter()
    .filter_map(|(section, changed)| changed.then_some(section))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_see_each_publication_once() {
        let cfg = Config::default();
        let h = ReloadHandle::new(&cfg);
        let mut a = h.follower();
        let mut b = h.follower();
        assert!(a.poll().is_none());
        let mut new = cfg.clone();
        new.detect.high_score = 99;
        new.allowlist.extra = vec!["example.org".into()];
        h.publish(&new);
        let r = a.poll().expect("a sees the reload");
        assert_eq!(r.detect.high_score, 99);
        assert_eq!(r.allowlist.len(), Allowlist::new(true, &new.allowlist.extra).len());
        assert!(a.poll().is_none(), "only once");
        assert_eq!(b.poll().expect("b too").detect.high_score, 99);
    }

    #[test]
    fn restart_sections_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        new.detect.low_score += 1;
        new.allowlist.builtin = false;
        assert!(needs_restart(&old, &new).is_empty(), "detect and allowlist reload live");
        new.state.max_domains += 1;
        new.export.min_score = 7;
        assert_eq!(needs_restart(&old, &new), ["state", "export"]);
    }
}
