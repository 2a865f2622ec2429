//! Seeded mutations of real Yjs updates (bit flips, truncations, splices) sent as save bodies:
//! every one is either kept (a valid update that contains the snapshot), refused as
//! `bad_update`, or refused by compare-and-set. None may be an internal error, and whatever is
//! kept must load back and decode.

use ykeep_core::merge::apply_to;
use ykeep_core::{ResourceId, ResourceKind};
use ykeep_store::{EmbeddedStore, Precondition, ServiceError, StoreConfig};
use yrs::{Doc, Map, ReadTxn, StateVector, Text, Transact};

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed_update() -> Vec<u8> {
    let doc = Doc::with_client_id(7);
    let t = doc.get_or_insert_text("t");
    t.insert(&mut doc.transact_mut(), 0, "hello wide world");
    t.remove_range(&mut doc.transact_mut(), 5, 5);
    doc.get_or_insert_map("m")
        .insert(&mut doc.transact_mut(), "k", "v");
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => b.truncate(rng.below(b.len())),
        2 => {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        _ => {
            let i = rng.below(b.len());
            let extra: Vec<u8> = (0..1 + rng.below(6)).map(|_| rng.next() as u8).collect();
            b.splice(i..i, extra);
        }
    }
    b
}

#[tokio::test]
async fn mangled_bodies_are_refused_or_kept_never_an_internal_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(StoreConfig {
        data_dir: dir.path().join("store"),
        secret: "s".into(),
        token_key: "k".into(),
        auto_create: false,
        max_snapshot_bytes: 1 << 20,
    })
    .await
    .unwrap();
    let base = seed_update();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut kept, mut bad, mut conflicts) = (0, 0, 0);
    for round in 0..1_000 {
        // A fresh row each round so compare-and-set does not hide decoding outcomes.
        let id = ResourceId::parse(&format!("r{round}")).unwrap();
        store.create(ResourceKind::Task, id.clone()).await.unwrap();
        let body = mutate(&mut rng, &base);
        match store
            .save(
                ResourceKind::Task,
                id.clone(),
                body.clone(),
                Precondition::Contains,
            )
            .await
        {
            Ok(_) => {
                kept += 1;
                let loaded = store.load(ResourceKind::Task, id).await.unwrap();
                assert_eq!(loaded.bytes, body, "round {round}: kept bytes load back");
                apply_to(&Doc::new(), &loaded.bytes)
                    .unwrap_or_else(|e| panic!("round {round}: a kept snapshot must decode: {e}"));
            }
            Err(ServiceError::BadUpdate(_)) => bad += 1,
            Err(ServiceError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("round {round}: body {body:?} gave {e}"),
        }
    }
    println!("mangled bodies: {kept} kept, {bad} bad_update, {conflicts} conflict");
    assert!(
        bad > 0,
        "the mutations must produce some undecodable bodies"
    );
}
