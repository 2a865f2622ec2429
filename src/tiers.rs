//! Which tier holds the page's edits: browser (IndexedDB), relay (its durable log), store.
//!
//! Pure state: updates, writes, socket events and the relay's acknowledgements
//! (`ykeep_core::acks`) go in, messages to send, settled waits and `durability` reports come out
//! of [`Tiers::drain`]. Every update the doc takes gets a sequence number; a tier holds an
//! update when:
//! - browser: every stored update up to it is written (a failed write or a lost database makes
//!   the tier unavailable, never "reached");
//! - relay: the relay acknowledged a mark at or past it. A mark is the page's `held` number, sent
//!   after the provider sent the updates, so it covers them. Updates the provider applied need
//!   none: they came from the relay, which sent them only once durable;
//! - store: a `Saved` for a mark at or past it (the host marks updates only the provider applied
//!   a while after them).

use ykeep_core::acks::{self, Decoded, Message};

/// A tier, in the order an edit reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Browser,
    Relay,
    Store,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Browser, Tier::Relay, Tier::Store];

    /// Its name in the JS API (`'browser'`, `'relay'`, `'store'`).
    pub fn name(self) -> &'static str {
        match self {
            Tier::Browser => "browser",
            Tier::Relay => "relay",
            Tier::Store => "store",
        }
    }

    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Where an update came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The page's own edit: stored, and marked to the relay.
    Own,
    /// Applied by the page's provider (the relay's, so on the relay already): stored.
    Provider,
    /// The load's merged state: the cache holds it already.
    Loaded,
}

/// The page's socket to the relay, as far as acknowledgements go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Closed,
    /// OptIn sent, no Welcome yet.
    Asked,
    /// The relay acknowledges; `marked` is the last mark sent on this socket.
    Welcomed {
        marked: u64,
    },
}

/// What a `durability` event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The furthest tier the page's latest edit has reached, with every tier before it that is
    /// available (None: not even the browser yet, or no edit).
    pub tier: Option<Tier>,
    /// The tiers that do not hold everything the page holds.
    pub unsaved: Vec<Tier>,
    /// Why the browser tier is unavailable.
    pub browser: Option<String>,
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send on the provider's socket.
    Send(Vec<u8>),
    Resolve(u64),
    Reject(u64, String),
    Durability(Report),
}

#[derive(Debug, Clone, Copy)]
struct Wait {
    id: u64,
    tier: Tier,
    target: u64,
}

#[derive(Debug)]
pub struct Tiers {
    held: u64,
    latest_own: u64,
    /// Sequence numbers not yet in IndexedDB, ascending (few: the writer's queue).
    unwritten: Vec<u64>,
    browser_off: Option<String>,
    /// Sequence numbers the relay has not confirmed, ascending: the page's own updates and the
    /// loaded state (which may hold an outbox), not what the provider applied (the relay sent
    /// those, once durable).
    unrelayed: Vec<u64>,
    store: u64,
    link: Link,
    waits: Vec<Wait>,
    next_wait: u64,
    reported: Option<Report>,
    /// `latest_own` when `reported` was.
    reported_edit: u64,
    out: Vec<Out>,
}

impl Tiers {
    /// `browser_off`: why there is no cache, if there is none.
    pub fn new(browser_off: Option<String>) -> Tiers {
        Tiers {
            held: 0,
            latest_own: 0,
            unwritten: Vec::new(),
            browser_off,
            unrelayed: Vec::new(),
            store: 0,
            link: Link::Closed,
            waits: Vec::new(),
            next_wait: 1,
            reported: None,
            reported_edit: 0,
            out: Vec::new(),
        }
    }

    /// The doc took an update; returns its sequence number.
    pub fn update(&mut self, origin: Origin) -> u64 {
        self.held += 1;
        let seq = self.held;
        if origin != Origin::Loaded && self.browser_off.is_none() {
            self.unwritten.push(seq);
        }
        if origin == Origin::Own {
            self.latest_own = seq;
        }
        if origin != Origin::Provider {
            self.unrelayed.push(seq);
        }
        seq
    }

    /// The relay holds everything up to `seq`.
    fn relayed(&mut self, seq: u64) {
        self.unrelayed.retain(|u| *u > seq);
    }

    /// The updates `seqs` are in IndexedDB.
    pub fn written(&mut self, seqs: &[u64]) {
        self.unwritten.retain(|u| !seqs.contains(u));
    }

    /// The cache cannot take writes any more (a failed write, another tab's newer format).
    pub fn browser_lost(&mut self, reason: String) {
        if self.browser_off.is_none() {
            self.browser_off = Some(reason);
            self.unwritten.clear();
        }
    }

    /// The provider's socket opened: ask for acknowledgements.
    pub fn opened(&mut self) {
        self.link = Link::Asked;
        self.out.push(Out::Send(Message::OptIn.encode()));
    }

    pub fn closed(&mut self) {
        self.link = Link::Closed;
    }

    /// Whether the relay acknowledges on the socket now open.
    pub fn acknowledged(&self) -> bool {
        matches!(self.link, Link::Welcomed { .. })
    }

    /// A ykeep message from the relay.
    pub fn message(&mut self, frame: &[u8]) -> Result<(), acks::AckError> {
        match acks::decode(frame)? {
            Decoded::Message(Message::Welcome) => {
                // The relay's SyncStep1 came first, so the page's SyncStep2 went before this.
                self.link = Link::Welcomed { marked: 0 };
                self.mark();
            }
            Decoded::Message(Message::Committed(n)) => self.relayed(n),
            Decoded::Message(Message::Saved(n)) => {
                self.relayed(n);
                self.store = self.store.max(n);
            }
            Decoded::Message(_) | Decoded::UnknownKind(_) => {}
        }
        Ok(())
    }

    /// Sends a mark if the page holds updates no mark on this socket covers. Call it after the
    /// provider sent the updates (the host does, in a microtask after the doc's update).
    pub fn mark(&mut self) {
        if let Link::Welcomed { marked } = &mut self.link
            && *marked < self.held
        {
            *marked = self.held;
            self.out.push(Out::Send(Message::Mark(self.held).encode()));
        }
    }

    /// A confirmation by other means (the relay's `/durable`): `tier` held everything up to
    /// `seq`.
    pub fn confirmed(&mut self, tier: Tier, seq: u64) {
        match tier {
            Tier::Browser => {}
            Tier::Relay => self.relayed(seq),
            Tier::Store => {
                self.relayed(seq);
                self.store = self.store.max(seq);
            }
        }
    }

    /// The sequence number of the latest update the doc took.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Waits until `tier` holds everything the page holds now: `Ok(None)` when it does already,
    /// `Ok(Some(id))` for a wait that [`Tiers::drain`] settles, `Err` when it never can.
    pub fn when_saved(&mut self, tier: Tier) -> Result<Option<u64>, String> {
        if self.reached(tier, self.held) {
            return Ok(None);
        }
        if let (Tier::Browser, Some(why)) = (tier, &self.browser_off) {
            return Err(format!("the browser tier is unavailable: {why}"));
        }
        let id = self.next_wait;
        self.next_wait += 1;
        self.waits.push(Wait {
            id,
            tier,
            target: self.held,
        });
        if tier != Tier::Browser {
            self.mark();
        }
        Ok(Some(id))
    }

    /// Rejects every wait (the page destroyed its `YKeep`).
    pub fn abandon(&mut self, why: &str) {
        for w in std::mem::take(&mut self.waits) {
            self.out.push(Out::Reject(w.id, why.to_owned()));
        }
    }

    /// The tiers that do not hold everything the page holds.
    pub fn unsaved(&self) -> Vec<Tier> {
        Tier::ALL
            .into_iter()
            .filter(|t| !self.reached(*t, self.held))
            .collect()
    }

    /// What to do now: sends, settled waits, and a `durability` report when it changed.
    pub fn drain(&mut self) -> Vec<Out> {
        let mut waits = std::mem::take(&mut self.waits);
        waits.retain(|w| {
            if self.reached(w.tier, w.target) {
                self.out.push(Out::Resolve(w.id));
                false
            } else if let (Tier::Browser, Some(why)) = (w.tier, &self.browser_off) {
                let why = format!("the browser tier is unavailable: {why}");
                self.out.push(Out::Reject(w.id, why));
                false
            } else {
                true
            }
        });
        self.waits = waits;
        let report = self.report();
        if self.reported.as_ref() != Some(&report) {
            // Tiers the latest edit passed on the way (the relay acknowledged before IndexedDB
            // finished writing) are reported too, each in order: a page sees browser, relay,
            // store, and each was true when it was said.
            let from = match &self.reported {
                Some(last) if self.reported_edit == self.latest_own => last.tier,
                _ => None,
            };
            for passed in Tier::ALL {
                let between = from < Some(passed) && Some(passed) < report.tier;
                if between && (passed != Tier::Browser || self.browser_off.is_none()) {
                    let step = Report {
                        tier: Some(passed),
                        ..report.clone()
                    };
                    self.out.push(Out::Durability(step));
                }
            }
            self.reported = Some(report.clone());
            self.reported_edit = self.latest_own;
            self.out.push(Out::Durability(report));
        }
        std::mem::take(&mut self.out)
    }

    pub fn report(&self) -> Report {
        let mut tier = None;
        if self.latest_own > 0 {
            for t in Tier::ALL {
                let skipped = t == Tier::Browser && self.browser_off.is_some();
                if skipped {
                    continue;
                }
                if !self.reached(t, self.latest_own) {
                    break;
                }
                tier = Some(t);
            }
        }
        Report {
            tier,
            unsaved: self.unsaved(),
            browser: self.browser_off.clone(),
        }
    }

    fn reached(&self, tier: Tier, seq: u64) -> bool {
        match tier {
            Tier::Browser => {
                self.browser_off.is_none() && self.unwritten.first().is_none_or(|u| *u > seq)
            }
            Tier::Relay => self.unrelayed.first().is_none_or(|u| *u > seq),
            Tier::Store => self.store >= seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(out: &[Out]) -> Vec<Message> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(b) => match acks::decode(b) {
                    Ok(Decoded::Message(m)) => Some(m),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn tiers_reported(out: &[Out]) -> Vec<Option<Tier>> {
        out.iter()
            .filter_map(|o| match o {
                Out::Durability(r) => Some(r.tier),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_edit_goes_browser_then_relay_then_store() {
        let mut t = Tiers::new(None);
        assert_eq!(t.drain(), [Out::Durability(t.report())]);
        t.opened();
        assert_eq!(sends(&t.drain()), [Message::OptIn]);
        let seq = t.update(Origin::Own);
        t.mark();
        let out = t.drain();
        assert!(sends(&out).is_empty(), "no mark before Welcome");
        assert_eq!(tiers_reported(&out), [None], "not even in the browser yet");
        t.message(&Message::Welcome.encode()).unwrap();
        assert_eq!(sends(&t.drain()), [Message::Mark(seq)]);
        // The relay's ack comes before the IndexedDB write: the report waits for the browser,
        // then says both, in order.
        t.message(&Message::Committed(seq).encode()).unwrap();
        assert!(tiers_reported(&t.drain()).iter().all(Option::is_none));
        t.written(&[seq]);
        assert_eq!(
            tiers_reported(&t.drain()),
            [Some(Tier::Browser), Some(Tier::Relay)]
        );
        assert_eq!(t.unsaved(), [Tier::Store]);
        t.message(&Message::Saved(seq).encode()).unwrap();
        assert_eq!(tiers_reported(&t.drain()), [Some(Tier::Store)]);
        assert!(t.unsaved().is_empty());
        // Nothing new: no report, no mark.
        t.mark();
        assert!(t.drain().is_empty());
    }

    #[test]
    fn when_saved_waits_for_everything_held_at_the_call() {
        let mut t = Tiers::new(None);
        t.opened();
        t.message(&Message::Welcome.encode()).unwrap();
        let own = t.update(Origin::Own);
        t.mark();
        let _ = t.drain();
        let wait = t.when_saved(Tier::Store).unwrap().unwrap();
        // An update from the provider after the call is not waited for, but one before is.
        let remote = t.update(Origin::Provider);
        t.message(&Message::Saved(own).encode()).unwrap();
        assert!(t.drain().contains(&Out::Resolve(wait)));
        // What the provider applied came from the relay: on it already, not yet in the store.
        assert_eq!(t.unsaved(), [Tier::Browser, Tier::Store]);
        assert_eq!(t.when_saved(Tier::Relay), Ok(None));
        let wait = t.when_saved(Tier::Store).unwrap().unwrap();
        assert_eq!(
            sends(&t.drain()),
            [Message::Mark(remote)],
            "a wait marks what only the provider applied"
        );
        t.message(&Message::Committed(remote).encode()).unwrap();
        assert!(!t.drain().contains(&Out::Resolve(wait)));
        t.message(&Message::Saved(remote).encode()).unwrap();
        assert!(t.drain().contains(&Out::Resolve(wait)));
        t.written(&[own, remote]);
        assert_eq!(t.when_saved(Tier::Browser), Ok(None));
        t.update(Origin::Own);
        let wait = t.when_saved(Tier::Store).unwrap().unwrap();
        t.abandon("destroyed");
        assert!(t.drain().contains(&Out::Reject(wait, "destroyed".into())));
    }

    #[test]
    fn a_lost_cache_is_unavailable_and_never_reached() {
        let mut t = Tiers::new(None);
        let seq = t.update(Origin::Own);
        let wait = t.when_saved(Tier::Browser).unwrap().unwrap();
        t.browser_lost("another tab opened a newer cache format".into());
        let out = t.drain();
        assert!(matches!(&out[0], Out::Reject(id, _) if *id == wait));
        assert!(t.when_saved(Tier::Browser).is_err());
        assert_eq!(t.unsaved(), Tier::ALL);
        // The relay tier goes on without it; the report skips the browser.
        t.confirmed(Tier::Relay, seq);
        assert_eq!(
            tiers_reported(&t.drain()),
            [Some(Tier::Relay)],
            "no browser step"
        );
        let report = t.report();
        assert_eq!(report.tier, Some(Tier::Relay));
        assert_eq!(report.unsaved, [Tier::Browser, Tier::Store]);
        assert!(report.browser.is_some());
        // A reconnect starts a new socket: OptIn again, and a fresh mark after Welcome.
        t.opened();
        t.closed();
        t.opened();
        t.message(&Message::Welcome.encode()).unwrap();
        assert_eq!(
            sends(&t.drain()),
            [Message::OptIn, Message::OptIn, Message::Mark(seq)]
        );
        assert!(t.message(&[107, 3]).is_err());
        // The loaded state is in the cache already.
        let mut fresh = Tiers::new(None);
        fresh.update(Origin::Loaded);
        assert_eq!(fresh.unsaved(), [Tier::Relay, Tier::Store]);
    }
}
