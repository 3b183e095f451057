//! Model checks of the delivery engine's state machines with loom: every
//! interleaving (up to a preemption bound) of the bridge crew's lanes and
//! threads, the notifier's hold, release and flush, and a consumer slot's
//! hand-off to the crew and its close.
//!
//! Run by `cargo xtask ci` as
//! `RUSTFLAGS="--cfg hub_loom" cargo test -p provisioning-watch-hub --release --lib loom`.
//! Each model has a negative control, a mutation that brings back a bug the
//! model must find, chosen with `HUB_LOOM_MUTATION` (only in this build):
//! `attach_race` (the slot linked after its thread can serve it, fixed in
//! c4cf93b) for the slot model, `no_wake_before_call` (a crew thread calls
//! a bridge while another is ready and no thread is free: neither the
//! waker's spare for a flush of several bridges nor the thread's own wake
//! before its call; the thread's wake alone, removed by hand, fails the
//! crew's unit test
//! `a_flush_during_a_call_wakes_a_thread_for_each_bridge_that_may_block`)
//! for the crew model, `sleep_race` (the notifier announces its sleep after
//! its last look) and `hold_ignored` (a transaction does not hold wake-ups)
//! for the notifier model.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::bridge_crew::{BridgeCrew, CrewLink, LaneWork, Step, Wakeup};
use super::consumer_slot::{ConsumerKind, ConsumerSlot};
use super::notifier::{Notifier, Wake};
use super::publication::Publication;
use super::sync::thread;
use super::sync::{AtomicBool, AtomicUsize, Mutex, OnceLock};
use super::test_publications;

/// Runs `model` under loom with `preemptions` and prints how many
/// interleavings it explored.
fn check(name: &str, preemptions: usize, model: impl Fn() + Sync + Send + 'static) {
    let iterations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = iterations.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    let started = std::time::Instant::now();
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        model();
    });
    println!(
        "loom model {name}: {} interleavings (preemption bound {preemptions}) in {:?}",
        iterations.load(Ordering::Relaxed),
        started.elapsed()
    );
}

fn lock<T>(mutex: &Mutex<T>) -> super::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a model's thread waits for what another one does. (Not park and
/// unpark: loom counts an unpark that reaches a thread already waiting in
/// a join as that join's end.) A lost wake-up leaves every thread waiting,
/// which loom reports as a deadlock.
#[derive(Default)]
struct Signal {
    lock: Mutex<()>,
    changed: loom::sync::Condvar,
}

impl Signal {
    /// Waits until `done` says so; whoever makes it true calls `notify`.
    fn wait_until(&self, done: impl Fn() -> bool) {
        let mut guard = lock(&self.lock);
        while !done() {
            guard = self
                .changed
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn notify(&self) {
        let _guard = lock(&self.lock);
        self.changed.notify_all();
    }
}

/// A gate a delivery can wait at (a bridge call that blocks) until another
/// delivery opens it.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    signal: Signal,
}

impl Gate {
    fn wait(&self) {
        self.signal.wait_until(|| self.open.load(Ordering::Acquire));
    }

    fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.signal.notify();
    }
}

/// A bridge's queue, as the crew model sees it.
struct FakeQueue {
    items: Mutex<(VecDeque<u32>, bool)>,
    delivered: Mutex<Vec<u32>>,
    link: OnceLock<CrewLink>,
    /// Told after each delivery.
    main: Arc<Signal>,
    /// A delivery of this queue waits at `blocks_on` first.
    blocks_on: Option<Arc<Gate>>,
    /// A delivery of this queue opens `opens`.
    opens: Option<Arc<Gate>>,
}

impl FakeQueue {
    fn new(
        main: &Arc<Signal>,
        blocks_on: Option<Arc<Gate>>,
        opens: Option<Arc<Gate>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            items: Mutex::new((VecDeque::new(), false)),
            delivered: Mutex::new(Vec::new()),
            link: OnceLock::new(),
            main: main.clone(),
            blocks_on,
            opens,
        })
    }

    /// Queues `item` and schedules the lane; the caller unparks.
    fn publish(&self, item: u32) -> Wakeup {
        lock(&self.items).0.push_back(item);
        self.schedule()
    }

    fn close(&self) {
        lock(&self.items).1 = true;
        self.schedule().unpark();
    }

    fn schedule(&self) -> Wakeup {
        self.link
            .get()
            .map_or_else(Wakeup::none, CrewLink::schedule)
    }

    fn delivered(&self) -> Vec<u32> {
        lock(&self.delivered).clone()
    }
}

struct FakeWork(Arc<FakeQueue>);

impl LaneWork for FakeWork {
    fn step(&mut self) -> Step {
        let item = {
            let mut items = lock(&self.0.items);
            match items.0.pop_front() {
                Some(item) => item,
                None if items.1 => return Step::Closed,
                None => return Step::Empty,
            }
        };
        if let Some(gate) = &self.0.blocks_on {
            gate.wait();
        }
        lock(&self.0.delivered).push(item);
        if let Some(gate) = &self.0.opens {
            gate.open();
        }
        self.0.main.notify();
        Step::Served
    }
}

fn join(crew: &BridgeCrew<FakeWork>, name: &str, queue: &Arc<FakeQueue>) {
    let linked = queue.clone();
    crew.join(name.to_owned(), FakeWork(queue.clone()), move |link| {
        let _ = linked.link.set(link);
    })
    .expect("a loom thread");
}

fn stop_and_join<W: LaneWork>(crew: &BridgeCrew<W>) {
    for handle in crew.stop() {
        handle.join().expect("a crew thread ended");
    }
    assert!(crew.unfinished().is_empty(), "{}", crew.describe());
}

/// Two bridges, one crew thread each. Bridge `a`'s call blocks until
/// bridge `b` has had its item: while a thread calls `a` with `b` ready, a
/// second thread must be free (isolation: the spare the flush wakes, or,
/// when the first threads are still busy with their start, the one the
/// caller wakes before its call), and that spare, patient while `a`'s call
/// lasts, must still serve `b`. The crew must schedule, serve, park and
/// wake without losing an item, and end once both are closed.
#[test]
fn loom_crew_lanes_schedule_serve_park_wake_and_shut_down() {
    check("crew lanes", 3, || {
        let main = Arc::new(Signal::default());
        let gate = Arc::new(Gate::default());
        let a = FakeQueue::new(&main, Some(gate.clone()), None);
        let b = FakeQueue::new(&main, None, Some(gate));
        let crew = BridgeCrew::new();
        join(&crew, "a", &a);
        join(&crew, "b", &b);
        // One flush for both, as the notifier does: the thread counted free
        // is unparked once both lanes are queued.
        let wakeups = [a.publish(1), b.publish(2)];
        for wakeup in wakeups {
            wakeup.unpark();
        }
        main.wait_until(|| a.delivered().len() == 1 && b.delivered().len() == 1);
        a.close();
        b.close();
        stop_and_join(&crew);
        assert_eq!(a.delivered(), [1]);
        assert_eq!(b.delivered(), [2]);
    });
}

/// What a crew lane serves in the slot model: the real consumer slot,
/// taken the way a cursor takes it.
struct SlotWork {
    slot: Arc<ConsumerSlot>,
    delivered: Arc<Mutex<Vec<u64>>>,
    main: Arc<Signal>,
}

impl LaneWork for SlotWork {
    fn step(&mut self) -> Step {
        let popped = {
            let mut queue = self.slot.lock();
            match queue.items.pop_front() {
                Some(publication) => Ok(publication),
                None => Err(queue.closed),
            }
        };
        match popped {
            Ok(publication) => {
                lock(&self.delivered).push(publication.first_seq());
                publication.ack();
                self.main.notify();
                Step::Served
            }
            Err(true) => Step::Closed,
            Err(false) => Step::Empty,
        }
    }
}

/// The hub's wake-up of a slot after a push (the notifier's quiet path).
fn push_and_wake(slot: &ConsumerSlot, publication: Publication) {
    assert!(slot.push(&Arc::new(publication)));
    if slot.request_wake() {
        slot.wake().unpark();
    }
}

/// A publisher pushes two publications into a bridge's slot while the
/// bridge is being attached: each reaches the bridge, once and in order,
/// without any later event; after the close the lane ends.
#[test]
fn loom_slot_hands_off_to_the_crew_while_it_attaches_and_closes() {
    check("slot hand-off", 3, || {
        let slot = Arc::new(ConsumerSlot::new("b".into(), ConsumerKind::Placement, 4));
        let (first, second) = (
            test_publications::unavailable(1, 1),
            test_publications::unavailable(2, 2),
        );
        let pushing = slot.clone();
        let pusher = loom::thread::spawn(move || {
            push_and_wake(&pushing, first);
            push_and_wake(&pushing, second);
        });
        let crew = BridgeCrew::new();
        let main = Arc::new(Signal::default());
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let linked = slot.clone();
        crew.join(
            "b".into(),
            SlotWork {
                slot: slot.clone(),
                delivered: delivered.clone(),
                main: main.clone(),
            },
            move |link| linked.link_crew(link),
        )
        .expect("a loom thread");
        main.wait_until(|| lock(&delivered).len() == 2);
        pusher.join().expect("the publisher ended");
        slot.close();
        stop_and_join(&crew);
        assert_eq!(*lock(&delivered), [1, 2]);
    });
}

/// A consumer as the notifier sees it.
struct FakeSlot {
    requested: AtomicBool,
    woken: AtomicUsize,
    main: Arc<Signal>,
}

impl FakeSlot {
    fn new(main: &Arc<Signal>) -> Arc<Self> {
        Arc::new(Self {
            requested: AtomicBool::new(false),
            woken: AtomicUsize::new(0),
            main: main.clone(),
        })
    }

    fn woken(&self) -> usize {
        self.woken.load(Ordering::Acquire)
    }
}

impl Wake for FakeSlot {
    fn request_wake(&self) -> bool {
        !self.requested.swap(true, Ordering::AcqRel)
    }

    fn wake(&self) -> Wakeup {
        self.requested.swap(false, Ordering::AcqRel);
        self.woken.fetch_add(1, Ordering::AcqRel);
        self.main.notify();
        Wakeup::none()
    }
}

/// A flush after a quiet spell (the publisher wakes), then a transaction:
/// nothing is woken while it holds, a flush inside it wakes what it held so
/// far, and its release wakes the rest through the notifier thread (a
/// burst) — none lost whether that thread polls, looks once more or
/// sleeps; then the thread ends on stop.
#[test]
fn loom_notifier_holds_releases_and_flushes_without_losing_a_wake_up() {
    check("notifier", 3, || {
        let notifier = Notifier::<FakeSlot>::start().expect("a loom thread");
        let main = Arc::new(Signal::default());
        let (a, b, c) = (
            FakeSlot::new(&main),
            FakeSlot::new(&main),
            FakeSlot::new(&main),
        );
        assert!(notifier.enqueue([&a].into_iter()));
        notifier.flush();
        main.wait_until(|| a.woken() == 1);

        notifier.hold();
        assert!(notifier.enqueue([&b].into_iter()));
        notifier.flush();
        thread::park_timeout(std::time::Duration::ZERO);
        assert_eq!(b.woken(), 0, "woken while the transaction holds");
        notifier.flush_held();
        main.wait_until(|| b.woken() == 1);
        assert!(notifier.enqueue([&c].into_iter()));
        assert_eq!(c.woken(), 0, "woken while the transaction holds");
        notifier.release();
        main.wait_until(|| c.woken() == 1);

        let worker = notifier.stop().expect("the notifier thread");
        worker.join().expect("the notifier thread ended");
    });
}
