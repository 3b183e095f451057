//! Golden vectors of CONTRACTS §6 and randomized properties of `diff` and the
//! hash.
//!
//! The crate has no dev-dependencies on purpose: `cargo tree -e features`
//! includes dev-dependencies, and the contract crate's graph must show no
//! `std` feature. Randomized cases therefore use a small seeded generator;
//! every failure prints its seed.

use provisioning_provider_api::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn golden(members: Vec<ClusterNode>, blocked: Vec<NodeId>, bytes: &str, hash: &str) {
    let s = ProviderSnapshot::new(members, blocked).expect("valid snapshot");
    assert_eq!(hex(&snapshot_hash_input(s.members(), s.blocked())), bytes);
    assert_eq!(format_hash(s.hash()).to_string(), hash);
}

#[test]
fn golden_vector_empty() {
    golden(vec![], vec![], "0000000000000000", "c77b3abb6f87acd9");
}

#[test]
fn golden_vector_one_member() {
    golden(
        vec![ClusterNode::new("n1", "127.0.0.1", 4000)],
        vec![],
        "01000000020000006e31090000003132372e302e302e31a00f0000000000000000",
        "8cd9924dea78c53d",
    );
}

#[test]
fn golden_vector_labels_and_blocked() {
    golden(
        vec![
            ClusterNode::new("n2", "10.0.0.2", 4001).with_label("zone", "a"),
            ClusterNode::new("n1", "127.0.0.1", 4000),
        ],
        vec!["n2".into()],
        "02000000020000006e31090000003132372e302e302e31a00f00000000020000006e320800000031302e302e302e32a10f01000000040000007a6f6e65010000006101000000020000006e32",
        "7eefaa892d336ceb",
    );
}

#[test]
fn staged_hash_equals_one_shot_hash_of_the_encoding() {
    // The hasher flushes its staging buffer every 4 KiB; the result must equal
    // a one-shot XXH3-64 of the whole encoding.
    let members: Vec<_> = (0..5000)
        .map(|i| {
            ClusterNode::new(
                format!("node-{i:05}"),
                format!("10.0.{}.{}", i / 256, i % 256),
                4000,
            )
            .with_label("zone", format!("z{}", i % 3))
        })
        .collect();
    let blocked: Vec<NodeId> = (0..2000)
        .map(|i| NodeId::from(format!("node-{i:05}")))
        .collect();
    let s = ProviderSnapshot::new(members, blocked).unwrap();
    let one_shot = xxhash_rust::xxh3::xxh3_64(&snapshot_hash_input(s.members(), s.blocked()));
    assert_eq!(s.hash(), one_shot);
}

/// xorshift64*: deterministic, seedable, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn id(&mut self) -> String {
        // Small alphabet so random snapshots overlap a lot.
        let len = 1 + self.below(2);
        (0..len)
            .map(|_| (b'a' + self.below(5) as u8) as char)
            .collect()
    }
}

fn random_snapshot(rng: &mut Rng) -> ProviderSnapshot {
    let mut nodes: Vec<ClusterNode> = Vec::new();
    for _ in 0..rng.below(14) {
        let id = rng.id();
        if nodes.iter().any(|n| n.id.as_str() == id) {
            continue;
        }
        let mut node = ClusterNode::new(
            id,
            rng.pick(&["10.0.0.1", "10.0.0.2", "h"]),
            rng.below(3) as u16,
        );
        for _ in 0..rng.below(3) {
            node.labels
                .insert(rng.pick(&["x", "y"]).into(), rng.pick(&["0", "1"]).into());
        }
        nodes.push(node);
    }
    let blocked = (0..rng.below(6)).map(|_| NodeId::from(rng.id())).collect();
    ProviderSnapshot::new(nodes, blocked).unwrap()
}

const CASES: u64 = 3000;

#[test]
fn property_applying_diff_a_b_to_a_gives_b() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed);
        let (a, b) = (random_snapshot(&mut rng), random_snapshot(&mut rng));
        let events = diff(&a, &b);
        let mut view = TopologyView::from_snapshot(&a);
        for event in &events {
            view.apply(event)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}; a={a:?} b={b:?}"));
        }
        assert!(
            view.matches(&b),
            "seed {seed}: a={a:?} b={b:?} events={events:?}"
        );
        assert_eq!(view, TopologyView::from_snapshot(&b), "seed {seed}");
        // Contract order: leave, join, unblocked, blocked; each sorted by id.
        let keys: Vec<_> = events
            .iter()
            .map(|e| (e.kind(), e.node_id().clone()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "seed {seed}");
        for e in &events {
            if let RemoteTopologyEvent::Join(node) = e {
                assert_eq!(b.member(node.id.as_str()), Some(node), "seed {seed}");
            }
        }
        assert!(diff(&a, &a.clone()).is_empty(), "seed {seed}");
    }
}

#[test]
fn property_changed_member_is_leave_then_join() {
    let a = ProviderSnapshot::new(vec![ClusterNode::new("n1", "h", 1)], vec![]).unwrap();
    let b = ProviderSnapshot::new(vec![ClusterNode::new("n1", "h", 2)], vec![]).unwrap();
    let events = diff(&a, &b);
    assert_eq!(
        events,
        vec![
            RemoteTopologyEvent::Leave("n1".into()),
            RemoteTopologyEvent::Join(ClusterNode::new("n1", "h", 2))
        ]
    );
}

#[test]
fn property_hash_ignores_insertion_order() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed);
        let a = random_snapshot(&mut rng);
        let (mut members, mut blocked) = a.clone().into_parts();
        for i in (1..members.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            members.swap(i, j);
        }
        blocked.reverse();
        let shuffled = ProviderSnapshot::new(members, blocked).unwrap();
        assert_eq!(shuffled.hash(), a.hash(), "seed {seed}");
    }
}

#[test]
fn property_hash_changes_with_any_hashed_field() {
    for seed in 1..=CASES {
        let mut rng = Rng(seed);
        let a = random_snapshot(&mut rng);
        let (mut members, mut blocked) = a.clone().into_parts();
        let which = if members.is_empty() {
            4 + rng.below(2)
        } else {
            rng.below(8)
        };
        let i = rng.below(members.len() as u64) as usize;
        match which {
            0 => members[i].host.push('z'),
            1 => members[i].port = members[i].port.wrapping_add(1),
            2 => {
                members[i].labels.insert("new".into(), "1".into());
            }
            3 => {
                let id = format!("{}z", members[i].id);
                members[i].id = id.into();
            }
            4 => blocked.push(NodeId::from("zzzz")),
            5 => members.push(ClusterNode::new("zzzz", "h", 1)),
            6 => {
                members.remove(i);
            }
            _ => {
                let label = members[i].labels.iter().next().map(|(k, _)| k.clone());
                match label {
                    Some(k) => {
                        members[i].labels.insert(k, "changed".into());
                    }
                    None => members[i].host.insert(0, 'q'),
                }
            }
        }
        let changed = ProviderSnapshot::new(members, blocked).unwrap();
        assert_ne!(changed.hash(), a.hash(), "seed {seed}, change {which}");
    }
}

#[test]
fn thousand_member_diff_is_linear_merge_shaped() {
    // 1 % churn on 1,000 members yields exactly the expected events.
    let a: Vec<_> = (0..1000)
        .map(|i| ClusterNode::new(format!("n{i:04}"), "h", 1))
        .collect();
    let mut b = a.clone();
    for i in 0..10 {
        b[i * 100].port = 2;
    }
    let a = ProviderSnapshot::new(a, vec![]).unwrap();
    let b = ProviderSnapshot::new(b, vec![]).unwrap();
    let events = diff(&a, &b);
    assert_eq!(events.len(), 20);
    assert!(
        events[..10]
            .iter()
            .all(|e| e.kind() == TopologyEventKind::Leave)
    );
    assert!(
        events[10..]
            .iter()
            .all(|e| e.kind() == TopologyEventKind::Join)
    );
}
