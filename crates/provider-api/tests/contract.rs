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
    let input = snapshot_hash_input(s.members(), s.blocked());
    assert_eq!(hex(&input), bytes);
    assert_eq!(format_hash(s.hash()).to_string(), hash);
    // A second XXH3-64, written from the specification, must agree: the
    // vectors then hold whatever the xxhash-rust crate does.
    assert_eq!(format!("{:016x}", reference_xxh3::xxh3_64(&input)), hash);
}

fn v2_member(state: MemberState) -> ClusterNode {
    ClusterNode::new("n1", "127.0.0.1", 4000)
        .with_incarnation(Incarnation::new("u-1").expect("valid incarnation"))
        .with_state(state)
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
fn golden_vector_v2_incarnation_draining() {
    golden(
        vec![v2_member(MemberState::Draining)],
        vec![],
        "01000000020000006e31090000003132372e302e302e31a00f0000008003000000752d310100000000",
        "f5d24982c47543d6",
    );
}

#[test]
fn golden_vector_v2_incarnation_serving() {
    golden(
        vec![v2_member(MemberState::Serving)],
        vec![],
        "01000000020000006e31090000003132372e302e302e31a00f0000008003000000752d310000000000",
        "a8d9b2af5d51e335",
    );
}

#[test]
fn a_draining_member_without_incarnation_encodes_an_empty_one() {
    let s = ProviderSnapshot::new(
        vec![ClusterNode::new("n1", "127.0.0.1", 4000).with_state(MemberState::Draining)],
        vec![],
    )
    .expect("valid snapshot");
    assert_eq!(
        hex(&snapshot_hash_input(s.members(), s.blocked())),
        "01000000020000006e31090000003132372e302e302e31a00f00000080000000000100000000"
    );
}

#[test]
fn reference_xxh3_agrees_with_the_crate_on_every_short_length() {
    // The reference covers inputs up to 128 bytes (all golden vectors); it
    // is checked on every such length so that a vector match is not luck.
    let data: Vec<u8> = (0..=128u32).map(|i| (i * 37 + 11) as u8).collect();
    for len in 0..=128 {
        assert_eq!(
            reference_xxh3::xxh3_64(&data[..len]),
            xxhash_rust::xxh3::xxh3_64(&data[..len]),
            "length {len}"
        );
    }
}

/// XXH3-64 with seed 0 for inputs of at most 128 bytes, written from the
/// XXH3 specification (xxhash_spec.md, "XXH3 algorithm description"),
/// independently of the xxhash-rust crate the hash uses.
mod reference_xxh3 {
    /// The first 128 bytes of the specification's default secret (shorter
    /// inputs read no further).
    const SECRET: [u8; 128] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad,
        0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3,
        0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc,
        0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6,
        0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65,
        0x8b, 0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19,
        0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9,
        0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31,
        0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    ];
    const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
    const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
    const PRIME_MX1: u64 = 0x1656_6791_9E37_79F9;
    const PRIME_MX2: u64 = 0x9FB2_1C65_1E98_DF25;

    fn le32(bytes: &[u8], at: usize) -> u64 {
        u64::from(u32::from_le_bytes([
            bytes[at],
            bytes[at + 1],
            bytes[at + 2],
            bytes[at + 3],
        ]))
    }

    fn le64(bytes: &[u8], at: usize) -> u64 {
        le32(bytes, at) | (le32(bytes, at + 4) << 32)
    }

    fn xxh64_avalanche(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(PRIME64_2);
        h ^= h >> 29;
        h = h.wrapping_mul(PRIME64_3);
        h ^ (h >> 32)
    }

    fn xxh3_avalanche(mut h: u64) -> u64 {
        h ^= h >> 37;
        h = h.wrapping_mul(PRIME_MX1);
        h ^ (h >> 32)
    }

    fn fold128(a: u64, b: u64) -> u64 {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn mix16(input: &[u8], at: usize, secret_at: usize) -> u64 {
        fold128(
            le64(input, at) ^ le64(&SECRET, secret_at),
            le64(input, at + 8) ^ le64(&SECRET, secret_at + 8),
        )
    }

    pub(crate) fn xxh3_64(input: &[u8]) -> u64 {
        let len = input.len();
        assert!(len <= 128, "the reference covers at most 128 bytes");
        let len64 = len as u64;
        match len {
            0 => xxh64_avalanche(le64(&SECRET, 56) ^ le64(&SECRET, 64)),
            1..=3 => {
                let combined = (u64::from(input[0]) << 16)
                    | (u64::from(input[len >> 1]) << 24)
                    | u64::from(input[len - 1])
                    | (len64 << 8);
                xxh64_avalanche(combined ^ (le32(&SECRET, 0) ^ le32(&SECRET, 4)))
            }
            4..=8 => {
                let keyed = (le32(input, len - 4) | (le32(input, 0) << 32))
                    ^ (le64(&SECRET, 8) ^ le64(&SECRET, 16));
                // rrmxmx
                let mut h = keyed ^ keyed.rotate_left(49) ^ keyed.rotate_left(24);
                h = h.wrapping_mul(PRIME_MX2);
                h ^= (h >> 35).wrapping_add(len64);
                h = h.wrapping_mul(PRIME_MX2);
                h ^ (h >> 28)
            }
            9..=16 => {
                let low = le64(input, 0) ^ (le64(&SECRET, 24) ^ le64(&SECRET, 32));
                let high = le64(input, len - 8) ^ (le64(&SECRET, 40) ^ le64(&SECRET, 48));
                xxh3_avalanche(
                    len64
                        .wrapping_add(low.swap_bytes())
                        .wrapping_add(high)
                        .wrapping_add(fold128(low, high)),
                )
            }
            _ => {
                let mut acc = len64.wrapping_mul(PRIME64_1);
                // Pairs from the outside in: (0, len-16), (16, len-32), ...
                let pairs = (len - 1) / 32 + 1;
                for k in 0..pairs {
                    acc = acc.wrapping_add(mix16(input, 16 * k, 32 * k));
                    acc = acc.wrapping_add(mix16(input, len - 16 * (k + 1), 32 * k + 16));
                }
                xxh3_avalanche(acc)
            }
        }
    }
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
        // Small alphabet so random snapshots overlap a lot; one id in three
        // is longer than a `NodeId` holds inline (22 bytes), so short and
        // long ids meet in one merge.
        let len = 1 + self.below(2);
        let id: String = (0..len)
            .map(|_| (b'a' + self.below(5) as u8) as char)
            .collect();
        match self.below(3) {
            0 => format!("{LONG_ID_PREFIX}{id}"),
            _ => id,
        }
    }
}

/// 24 bytes: an id that starts with it is held on the heap.
const LONG_ID_PREFIX: &str = "member-with-a-long-name-";
/// Two hosts past a snapshot's inline copy (15 bytes), of one length,
/// differing only in their last byte.
const LONG_HOST_A: &str = "node-7.zone-a.cluster.example.a";
const LONG_HOST_B: &str = "node-7.zone-a.cluster.example.b";

fn random_snapshot(rng: &mut Rng) -> ProviderSnapshot {
    let mut nodes: Vec<ClusterNode> = Vec::new();
    for _ in 0..rng.below(14) {
        let id = rng.id();
        if nodes.iter().any(|n| n.id.as_str() == id) {
            continue;
        }
        let mut node = ClusterNode::new(
            id,
            rng.pick(&["10.0.0.1", "10.0.0.2", "h", LONG_HOST_A, LONG_HOST_B]),
            rng.below(3) as u16,
        );
        for _ in 0..rng.below(3) {
            node.labels
                .insert(rng.pick(&["x", "y"]).into(), rng.pick(&["0", "1"]).into());
        }
        // Lifecycle fields often, so restarts and state-only changes are
        // common between two random snapshots.
        match rng.below(3) {
            0 => {}
            _ => {
                let incarnation = rng.pick(&["i1", "i2"]);
                node.incarnation = Some(Incarnation::new(incarnation).unwrap());
            }
        }
        if rng.below(2) == 0 {
            node.state = MemberState::Draining;
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
        // Contract order: leave, join, serving, draining, unblocked,
        // blocked; each sorted by id.
        let keys: Vec<_> = events
            .iter()
            .map(|e| (e.kind(), e.node_id().clone()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "seed {seed}");
        for e in &events {
            if let Some(node) = e.member() {
                assert_eq!(b.member(node.id.as_str()), Some(node), "seed {seed}");
            }
            // A state event is only ever a state change of the same life.
            if let RemoteTopologyEvent::Serving(node) | RemoteTopologyEvent::Draining(node) = e {
                let before = a.member(node.id.as_str()).expect("was a member");
                assert!(before.same_life(node), "seed {seed}");
                assert_ne!(before.state, node.state, "seed {seed}");
            }
        }
        assert!(diff(&a, &a.clone()).is_empty(), "seed {seed}");
    }
}

#[test]
fn property_the_snapshot_hash_is_the_hash_of_its_encoding() {
    // A snapshot hashes the hosts it keeps beside its members; the result
    // must be the contract's hash of the members as they are, whatever the
    // lengths of their ids and hosts.
    for seed in 1..=CASES {
        let mut rng = Rng(seed);
        let s = random_snapshot(&mut rng);
        let input = snapshot_hash_input(s.members(), s.blocked());
        assert_eq!(
            s.hash(),
            xxhash_rust::xxh3::xxh3_64(&input),
            "seed {seed}: {s:?}"
        );
        assert_eq!(
            s.hash(),
            snapshot_hash(s.members(), s.blocked()),
            "seed {seed}"
        );
    }
}

#[test]
fn a_host_change_past_the_inline_copy_is_a_restart() {
    let at =
        |host: &str| ProviderSnapshot::new(vec![ClusterNode::new("n1", host, 1)], vec![]).unwrap();
    let (a, b) = (at(LONG_HOST_A), at(LONG_HOST_B));
    assert_eq!(
        diff(&a, &b),
        vec![
            RemoteTopologyEvent::Leave("n1".into()),
            RemoteTopologyEvent::Join(ClusterNode::new("n1", LONG_HOST_B, 1))
        ]
    );
    assert!(diff(&a, &at(LONG_HOST_A)).is_empty());
    assert_ne!(a.hash(), b.hash());
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
fn restart_is_leave_then_join_and_state_change_is_one_event() {
    let life = |incarnation: &str, state| {
        ClusterNode::new("n1", "h", 1)
            .with_incarnation(Incarnation::new(incarnation).unwrap())
            .with_state(state)
    };
    let snapshot = |node: ClusterNode| ProviderSnapshot::new(vec![node], vec![]).unwrap();
    let serving = snapshot(life("1", MemberState::Serving));
    let restarted = snapshot(life("2", MemberState::Serving));
    let draining = snapshot(life("2", MemberState::Draining));
    let restarted_draining = snapshot(life("3", MemberState::Draining));
    assert_eq!(
        diff(&serving, &restarted),
        vec![
            RemoteTopologyEvent::Leave("n1".into()),
            RemoteTopologyEvent::Join(life("2", MemberState::Serving)),
        ]
    );
    assert_eq!(
        diff(&restarted, &draining),
        vec![RemoteTopologyEvent::Draining(life(
            "2",
            MemberState::Draining
        ))]
    );
    assert_eq!(
        diff(&draining, &restarted),
        vec![RemoteTopologyEvent::Serving(life(
            "2",
            MemberState::Serving
        ))]
    );
    // A restart that comes back draining is one pair, not three events.
    assert_eq!(
        diff(&draining, &restarted_draining),
        vec![
            RemoteTopologyEvent::Leave("n1".into()),
            RemoteTopologyEvent::Join(life("3", MemberState::Draining)),
        ]
    );
    // A member that gains an incarnation it never had is a new life too.
    let unknown = snapshot(ClusterNode::new("n1", "h", 1));
    assert_eq!(diff(&unknown, &serving).len(), 2);
}

#[test]
fn all_six_kinds_come_in_contract_order() {
    let node = |id: &str, state| ClusterNode::new(id, "h", 1).with_state(state);
    let a = ProviderSnapshot::new(
        vec![
            node("a", MemberState::Serving),
            node("s", MemberState::Draining),
            node("d", MemberState::Serving),
        ],
        vec!["u".into()],
    )
    .unwrap();
    let b = ProviderSnapshot::new(
        vec![
            node("j", MemberState::Serving),
            node("s", MemberState::Serving),
            node("d", MemberState::Draining),
        ],
        vec!["b".into()],
    )
    .unwrap();
    let kinds: Vec<_> = diff(&a, &b)
        .iter()
        .map(|e| (e.kind().as_str(), e.node_id().to_string()))
        .collect();
    let expected = [
        ("leave", "a"),
        ("join", "j"),
        ("serving", "s"),
        ("draining", "d"),
        ("unblocked", "u"),
        ("blocked", "b"),
    ];
    assert_eq!(kinds, expected.map(|(k, id)| (k, id.to_string())).to_vec());
}

#[test]
fn a_state_event_that_does_not_fit_the_view_is_refused() {
    let serving = ClusterNode::new("n1", "h", 1);
    let draining = serving.clone().with_state(MemberState::Draining);
    let mut view =
        TopologyView::from_snapshot(&ProviderSnapshot::new(vec![serving.clone()], vec![]).unwrap());
    // Already serving; not a member; a different life; a kind that
    // contradicts the member it carries.
    assert!(
        view.apply(&RemoteTopologyEvent::Serving(serving.clone()))
            .is_err()
    );
    assert!(
        view.apply(&RemoteTopologyEvent::Draining(
            ClusterNode::new("n2", "h", 1).with_state(MemberState::Draining)
        ))
        .is_err()
    );
    assert!(
        view.apply(&RemoteTopologyEvent::Draining(
            ClusterNode::new("n1", "h", 2).with_state(MemberState::Draining)
        ))
        .is_err()
    );
    assert!(
        view.apply(&RemoteTopologyEvent::Draining(serving.clone()))
            .is_err()
    );
    view.apply(&RemoteTopologyEvent::Draining(draining.clone()))
        .unwrap();
    assert_eq!(view.members["n1"], draining);
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
            rng.below(10)
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
            8 => {
                members[i].state = match members[i].state {
                    MemberState::Serving => MemberState::Draining,
                    MemberState::Draining => MemberState::Serving,
                };
            }
            9 => {
                let next = match &members[i].incarnation {
                    None => "i9".to_string(),
                    Some(old) => format!("{old}9"),
                };
                members[i].incarnation = Some(Incarnation::new(next).unwrap());
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
