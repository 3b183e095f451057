//! [`BridgeCrew`]: the threads that call the bridges. Any crew thread serves
//! any bridge (one thread at a time per bridge, so its calls stay in
//! order), and one wake-up usually serves them all.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use super::sync::thread::{self, JoinHandle, Thread};
use super::sync::{self, AtomicU8, Mutex, MutexGuard};

/// Nothing to deliver, or a crew thread is about to look.
const IDLE: u8 = 0;
/// In the ready queue.
const QUEUED: u8 = 1;
/// A crew thread is delivering.
const SERVING: u8 = 2;
/// A crew thread is delivering and more came in meanwhile.
const NOTIFIED: u8 = 3;
/// The consumer's queue is closed and drained; the bridge was dropped.
const DONE: u8 = 4;

/// How long a spare thread waits for a thread inside a bridge call to come
/// back and serve the ready bridges itself, before it serves them (the most
/// a bridge that blocks holds up the others, besides the spare's wake-up).
/// A switch's three bridges take 20–40 µs on the target machines; the
/// patience covers that a few times over, and a thread the host stalls for
/// longer is relieved soon (500 µs and 50 µs measured alike, BENCHMARKS.md).
const SPARE_PATIENCE: Duration = Duration::from_micros(100);

/// Waking an idle thread costs about 8 µs of the waker's time on the target
/// machines and tens of µs until the thread runs (BENCHMARKS.md), and the three
/// bridges of a switch are all woken at once. One thread per bridge paid
/// that three times in a row before the last bridge saw the switch; the crew
/// pays it once or twice:
///
/// - A bridge with work goes into the ready queue, and the waker makes sure
///   that one crew thread is awake and not inside a bridge call; it unparks
///   that thread once every bridge of its flush is queued ([`Wakeup`]).
///   That thread takes the ready bridges one after the other; a bridge
///   call takes microseconds, so it usually serves all of them before a
///   second thread is even running.
/// - **Isolation.** A thread that takes a bridge while others are still
///   ready makes sure another thread is free first (it wakes one before its
///   call), so a bridge that blocks does not hold up the others: the other
///   thread serves them. There is one thread per bridge, so when every
///   thread is inside a call, every bridge with work is being served.
/// - **The spare is patient.** A thread woken while another thread is
///   inside a call, finding bridges ready, is a spare: it waits
///   [`SPARE_PATIENCE`] once (cut short when a bridge is queued while no
///   thread is inside a call), so that the thread inside the call can come
///   back and take them itself, and takes them only if they are still
///   ready then. On two cores a second thread serving at once competes
///   with the first (and with the publisher) for the CPU and the crew's
///   lock, and wakes a third for the bridge after it; a switch's last
///   callback came 9–15 µs later (BENCHMARKS.md). So a bridge that blocks
///   holds up the others by the spare's patience plus its wake-up each
///   time work for them arrives while it blocks (and the next bridge to
///   block adds its own).
/// - When a flush queues several bridges while no thread is inside a call,
///   the waker wakes the spare with the first thread, so that the first
///   does not pay that wake-up between its calls. The thread's own wake
///   before a call is for the other case: a flush while a call is under
///   way (the thread woken for it is a spare, and wakes the next one before
///   it calls a bridge with others still ready).
///
/// Decision 9 holds as before: no hub lock is held during a bridge call, a
/// bridge may call back into the service, and a panic is caught, counted and
/// followed by a resync.
pub(crate) struct BridgeCrew<W: LaneWork> {
    shared: Arc<Shared<W>>,
}

/// What a lane serves: in the hub a bridge and its cursor
/// ([`BridgeWork`](super::bridge_work::BridgeWork)).
pub(crate) trait LaneWork: Send + 'static {
    /// Delivers the next item, if there is one.
    fn step(&mut self) -> Step;
}

/// What one [`LaneWork::step`] did.
pub(crate) enum Step {
    /// Delivered an item (or skipped one the consumer does not take).
    Served,
    /// Nothing queued.
    Empty,
    /// The queue is closed and drained.
    Closed,
}

struct Shared<W: LaneWork> {
    state: Mutex<CrewState<W>>,
    /// [`SPARE_PATIENCE`], longer or shorter in tests.
    patience: Duration,
}

struct CrewState<W: LaneWork> {
    lanes: Vec<Arc<Lane<W>>>,
    /// Indices into `lanes` of the bridges waiting for a thread.
    ready: VecDeque<usize>,
    threads: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    /// Indices into `threads` of the parked ones.
    idle: Vec<usize>,
    /// Threads awake (or woken, or waiting out their patience as spares)
    /// and not inside a bridge call.
    free: usize,
    /// Threads inside a bridge call (serving a lane).
    serving: usize,
    /// Indices into `threads` of the spares waiting out their patience.
    patient: Vec<usize>,
    stopping: bool,
}

/// One bridge: its target and cursor, and where it is in the crew's
/// schedule.
struct Lane<W: LaneWork> {
    name: String,
    state: AtomicU8,
    /// Taken by the one thread serving the bridge; emptied when its queue
    /// closes, which drops the bridge.
    work: Mutex<Option<W>>,
    crew: Weak<Shared<W>>,
    index: usize,
}

/// A lane as its consumer slot sees it: something to schedule.
trait Schedule: Send + Sync {
    fn schedule(&self) -> Wakeup;
}

impl<W: LaneWork> Schedule for Lane<W> {
    fn schedule(&self) -> Wakeup {
        match self.crew.upgrade() {
            Some(crew) => crew.schedule(self, self.index),
            None => Wakeup::none(),
        }
    }
}

/// The crew threads a [`CrewLink::schedule`] chose (counted free, now or
/// earlier as a waiting spare) and that are still to be unparked.
///
/// A flush schedules several bridges (a switch: all three) and unparks
/// the thread after the last of them is queued. Unparked at the first, the
/// thread could take the waker's core at once and then wait on the crew's
/// lock for the waker's next `schedule`: on two cores a sleep and a
/// wake-up for each bridge, between the switch's first and last callback.
/// Deferring the unpark changes nothing for correctness: the threads are
/// counted free (so no other schedule wakes one for them) and an unpark is
/// never lost, whenever it comes: dropped (a wake-up that panicked on the
/// way), a `Wakeup` unparks its threads too. At most two: the thread to
/// serve and the spare.
#[must_use = "unparks at once when dropped; keep it until the flush's last schedule"]
pub(crate) struct Wakeup([Option<Thread>; 2]);

impl Wakeup {
    /// Nothing to unpark.
    pub(crate) fn none() -> Self {
        Self([None, None])
    }

    /// Whether there is no thread to unpark.
    pub(crate) fn is_none(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    pub(crate) fn unpark(self) {
        drop(self);
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        for thread in &mut self.0 {
            unpark(thread.take());
        }
    }
}

/// What a consumer slot keeps to get its bridge served (weak: the lane
/// holds the slot through its cursor).
pub(crate) struct CrewLink {
    lane: Weak<dyn Schedule>,
}

impl CrewLink {
    /// The bridge has something new: queue it for a crew thread (if it
    /// was idle). Returns the crew threads to unpark once whatever else the
    /// caller schedules is queued too.
    pub(crate) fn schedule(&self) -> Wakeup {
        match self.lane.upgrade() {
            Some(lane) => lane.schedule(),
            None => Wakeup::none(),
        }
    }
}

impl<W: LaneWork> BridgeCrew<W> {
    pub(crate) fn new() -> Self {
        Self::with_patience(SPARE_PATIENCE)
    }

    /// A crew whose spares wait `patience` (see [`SPARE_PATIENCE`]).
    fn with_patience(patience: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                patience,
                state: Mutex::new(CrewState {
                    lanes: Vec::new(),
                    ready: VecDeque::new(),
                    threads: Vec::new(),
                    handles: Vec::new(),
                    idle: Vec::new(),
                    free: 0,
                    serving: 0,
                    patient: Vec::new(),
                    stopping: false,
                }),
            }),
        }
    }

    /// Adds a bridge, and a thread to the crew; the bridge is served at
    /// once (its cursor starts with the resync bundle). `link` hands the
    /// bridge's consumer slot its [`CrewLink`].
    pub(crate) fn join(
        &self,
        name: String,
        work: W,
        link: impl FnOnce(CrewLink),
    ) -> std::io::Result<()> {
        let mut state = self.shared.lock();
        let index = state.threads.len();
        let lane_index = state.lanes.len();
        // Queued from the start (its cursor begins with the resync bundle),
        // before the thread exists: the new thread finds it even if the
        // crew is stopping.
        let lane = Arc::new(Lane {
            name,
            state: AtomicU8::new(QUEUED),
            work: Mutex::new(Some(work)),
            crew: Arc::downgrade(&self.shared),
            index: lane_index,
        });
        state.lanes.push(lane.clone());
        state.ready.push_back(lane_index);
        let shared = self.shared.clone();
        let spawned = thread::spawn(format!("watch-hub-bridge-{index}"), move || {
            shared.run(index);
        });
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                // No thread ran yet (the lock is held): take the lane back,
                // and drop it (and with it the cursor, which closes the
                // slot, and the bridge) outside the lock.
                state.ready.retain(|&i| i != lane_index);
                let taken = state.lanes.pop();
                drop(state);
                drop(taken);
                drop(lane);
                return Err(e);
            }
        };
        let lane: Arc<dyn Schedule> = lane;
        let mut linking = Some((
            link,
            CrewLink {
                lane: Arc::downgrade(&lane),
            },
        ));
        // Linked before any thread can take the lane (the lock is held): a
        // publication after the link schedules it, one before it is found
        // by the lane's first serving.
        if !sync::mutation("attach_race")
            && let Some((link, crew_link)) = linking.take()
        {
            link(crew_link);
        }
        state.threads.push(handle.thread().clone());
        state.free += 1;
        // A shutdown that began after the bridge's slot was added closed
        // it and took the handles already: the thread serves what is ready
        // and ends by itself.
        if !state.stopping {
            state.handles.push(handle);
        }
        drop(state);
        // The negative control `attach_race` (the race fixed in c4cf93b):
        // linked once the new thread may have served the lane and left it
        // idle, so that a publication in between schedules nothing.
        if let Some((link, crew_link)) = linking {
            link(crew_link);
        }
        Ok(())
    }

    /// Lets the threads end once no bridge is ready; returns them to be
    /// joined. Bridges whose queue is closed are served to the end first.
    pub(crate) fn stop(&self) -> Vec<JoinHandle<()>> {
        let (handles, wake) = {
            let mut state = self.shared.lock();
            state.stopping = true;
            let idle = std::mem::take(&mut state.idle);
            state.free += idle.len();
            // The parked threads, and the spares (so that none waits out
            // its patience first).
            let wake: Vec<Thread> = idle
                .iter()
                .chain(&state.patient)
                .map(|&i| state.threads[i].clone())
                .collect();
            (std::mem::take(&mut state.handles), wake)
        };
        for thread in wake {
            thread.unpark();
        }
        handles
    }

    /// Each lane's state, the ready queue, the free count and whether the
    /// crew stops, for a model's failure message.
    #[cfg(all(test, hub_loom))]
    pub(crate) fn describe(&self) -> String {
        let state = self.shared.lock();
        let lanes: Vec<_> = state
            .lanes
            .iter()
            .map(|lane| (lane.name.clone(), lane.state.load(Ordering::Acquire)))
            .collect();
        format!(
            "lanes {lanes:?} ready {:?} idle {:?} free {} serving {} patient {:?} stopping {}",
            state.ready, state.idle, state.free, state.serving, state.patient, state.stopping
        )
    }

    /// The bridges whose queue is not yet closed and drained (one stuck in
    /// a call among them).
    pub(crate) fn unfinished(&self) -> Vec<String> {
        self.shared
            .lock()
            .lanes
            .iter()
            .filter(|lane| lane.state.load(Ordering::Acquire) != DONE)
            .map(|lane| lane.name.clone())
            .collect()
    }
}

impl<W: LaneWork> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, CrewState<W>> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn schedule(&self, lane: &Lane<W>, index: usize) -> Wakeup {
        let before = lane
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| match state {
                IDLE => Some(QUEUED),
                SERVING => Some(NOTIFIED),
                // Already queued or noticed, or finished.
                _ => None,
            });
        // Only an idle lane joins the queue; a serving one is drained again.
        if before != Ok(IDLE) {
            return Wakeup::none();
        }
        let mut state = self.lock();
        state.ready.push_back(index);
        // A spare still waiting out its patience while nothing is being
        // served would hold the bridge up for nothing: it is cut short.
        let server = match state.patient.first() {
            Some(&spare) if state.serving == 0 => Some(state.threads[spare].clone()),
            _ => state.wake_if_none_free(),
        };
        // The spare for a flush of several bridges, woken by the waker
        // rather than by the first thread between its calls.
        let spare = if state.ready.len() > 1
            && state.free == 1
            && state.serving == 0
            && !sync::mutation("no_wake_before_call")
        {
            state.wake_one()
        } else {
            None
        };
        Wakeup([server, spare])
    }

    /// A crew thread: takes ready bridges until the crew stops.
    fn run(&self, me: usize) {
        loop {
            let (lane, wake, in_call) = {
                let mut state = self.lock();
                // Whether this thread was just woken, and waits for a thread
                // inside a call before it serves what is ready (the spare).
                let mut patient = false;
                loop {
                    if patient && state.serving > 0 && !state.ready.is_empty() && !state.stopping {
                        patient = false;
                        state.patient.push(me);
                        drop(state);
                        thread::park_timeout(self.patience);
                        state = self.lock();
                        state.patient.retain(|&i| i != me);
                        continue;
                    }
                    if let Some(index) = state.ready.pop_front() {
                        state.free -= 1;
                        state.serving += 1;
                        // Another free thread for the bridges still ready,
                        // in case this call blocks.
                        let wake =
                            if state.ready.is_empty() || sync::mutation("no_wake_before_call") {
                                None
                            } else {
                                state.wake_if_none_free()
                            };
                        break (state.lanes[index].clone(), wake, InCall(self));
                    }
                    if state.stopping {
                        state.free -= 1;
                        return;
                    }
                    state.free -= 1;
                    state.idle.push(me);
                    drop(state);
                    thread::park();
                    state = self.lock();
                    // Whoever unparked this thread took it off `idle` and
                    // counted it free; after a spurious return it is still
                    // listed.
                    if let Some(at) = state.idle.iter().position(|&i| i == me) {
                        state.idle.swap_remove(at);
                        state.free += 1;
                    }
                    patient = true;
                }
            };
            unpark(wake);
            lane.serve();
            drop(in_call);
        }
    }
}

/// A crew thread inside a bridge call: counted out of `serving` when the
/// call ends, and free again, unless it ends by unwinding (the thread is
/// then gone; left counted, every later spare would wait out its patience).
struct InCall<'a, W: LaneWork>(&'a Shared<W>);

impl<W: LaneWork> Drop for InCall<'_, W> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.serving -= 1;
        if !std::thread::panicking() {
            state.free += 1;
        }
    }
}

impl<W: LaneWork> CrewState<W> {
    /// Takes a parked thread to wake (counted free from now) unless one is
    /// free already.
    fn wake_if_none_free(&mut self) -> Option<Thread> {
        if self.free > 0 {
            return None;
        }
        self.wake_one()
    }

    /// Takes a parked thread to wake (counted free from now), if any.
    fn wake_one(&mut self) -> Option<Thread> {
        let i = self.idle.pop()?;
        self.free += 1;
        Some(self.threads[i].clone())
    }
}

fn unpark(thread: Option<Thread>) {
    if let Some(thread) = thread {
        thread.unpark();
    }
}

impl<W: LaneWork> Lane<W> {
    /// Delivers everything queued for the bridge, including what arrives
    /// while it does.
    ///
    /// Every write of the lane's state is a read-modify-write, like the
    /// scheduler's: the lane's writes and a concurrent `schedule` are then
    /// ordered in every execution the model checker tries, as on the
    /// machines (a plain store racing its `fetch_update` left the model a
    /// `NOTIFIED` after `DONE`).
    fn serve(&self) {
        self.state.swap(SERVING, Ordering::AcqRel);
        let mut work = self.work.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lane_work) = work.as_mut() else {
            self.state.swap(DONE, Ordering::AcqRel);
            return;
        };
        loop {
            match lane_work.step() {
                Step::Served => {}
                Step::Empty => {
                    if self
                        .state
                        .compare_exchange(SERVING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                    // NOTIFIED: something came in since the queue was empty.
                    self.state.swap(SERVING, Ordering::AcqRel);
                }
                Step::Closed => {
                    let finished = work.take();
                    self.state.swap(DONE, Ordering::AcqRel);
                    drop(work);
                    // Drops the bridge and the cursor (which drains the
                    // slot); a bridge whose drop panics must not take the
                    // crew thread with it.
                    if catch_unwind(AssertUnwindSafe(|| drop(finished))).is_err() {
                        tracing::error!(consumer = %self.name, "watch hub bridge panicked when dropped");
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
#[cfg(not(hub_loom))]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
    use std::time::{Duration, Instant};

    use super::{BridgeCrew, CrewLink, LaneWork, Step, Wakeup};

    type Served = Arc<Mutex<Vec<(&'static str, String)>>>;
    type Queue = Arc<Mutex<VecDeque<u32>>>;
    type Call = Box<dyn Fn() + Send>;

    /// A lane serving one-item queues; each call records the thread that
    /// made it, then runs `call`.
    struct TestLane {
        name: &'static str,
        items: Queue,
        served: Served,
        call: Call,
    }

    impl LaneWork for TestLane {
        fn step(&mut self) -> Step {
            let item = self
                .items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            if item.is_none() {
                return Step::Empty;
            }
            let thread = std::thread::current().name().unwrap_or("-").to_owned();
            self.served
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((self.name, thread));
            (self.call)();
            Step::Served
        }
    }

    struct Lanes {
        crew: BridgeCrew<TestLane>,
        queues: Vec<(Queue, Arc<OnceLock<CrewLink>>)>,
        served: Served,
    }

    impl Lanes {
        /// A crew with one lane per `(name, call)`, every thread parked.
        fn new(patience: Duration, calls: Vec<(&'static str, Call)>) -> Self {
            let crew = BridgeCrew::with_patience(patience);
            let served = Served::default();
            let mut queues = Vec::new();
            for (name, call) in calls {
                let items = Arc::new(Mutex::new(VecDeque::new()));
                let link = Arc::new(OnceLock::new());
                let linked = link.clone();
                let lane = TestLane {
                    name,
                    items: items.clone(),
                    served: served.clone(),
                    call,
                };
                crew.join(name.to_owned(), lane, move |l| {
                    let _ = linked.set(l);
                })
                .expect("a crew thread");
                queues.push((items, link));
            }
            let lanes = Self {
                crew,
                queues,
                served,
            };
            let threads = lanes.queues.len();
            assert!(
                lanes.wait(Duration::from_secs(5), |l| l.crew.shared.lock().idle.len()
                    == threads),
                "the crew's threads park after their first look"
            );
            lanes
        }

        /// One flush: an item for each of `lanes` (indices), then the
        /// wake-ups.
        fn flush(&self, lanes: &[usize]) {
            let wakeups: Vec<Wakeup> = lanes
                .iter()
                .map(|&i| {
                    let (items, link) = &self.queues[i];
                    items
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(1);
                    link.get().map_or_else(Wakeup::none, CrewLink::schedule)
                })
                .collect();
            for wakeup in wakeups {
                wakeup.unpark();
            }
        }

        fn patient(&self) -> usize {
            self.crew.shared.lock().patient.len()
        }

        fn serving(&self) -> usize {
            self.crew.shared.lock().serving
        }

        fn served(&self) -> Vec<(&'static str, String)> {
            self.served
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }

        fn wait(&self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
            let started = Instant::now();
            while !done(self) {
                if started.elapsed() > limit {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            true
        }
    }

    impl Drop for Lanes {
        fn drop(&mut self) {
            for handle in self.crew.stop() {
                let _ = handle.join();
            }
        }
    }

    /// A call that returns once `release` is told (or after 10 s).
    fn held_until(release: mpsc::Receiver<()>) -> Call {
        let release = Mutex::new(release);
        Box::new(move || {
            let _ = release
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv_timeout(Duration::from_secs(10));
        })
    }

    /// A held first bridge and two quick ones, `b` and `c`, with spares
    /// patient for 10 s; the sender releases the held call.
    fn held_b_c() -> (Lanes, mpsc::Sender<()>) {
        let (release, held) = mpsc::channel();
        let lanes = Lanes::new(
            Duration::from_secs(10),
            vec![
                ("held", held_until(held)),
                ("b", Box::new(|| {})),
                ("c", Box::new(|| {})),
            ],
        );
        (lanes, release)
    }

    /// A call that tells `done`.
    fn telling(done: mpsc::Sender<()>) -> Call {
        Box::new(move || {
            let _ = done.send(());
        })
    }

    #[test]
    fn the_spare_leaves_the_ready_bridges_to_a_thread_back_within_its_patience() {
        // The first bridge's call lasts until the test sees the spare
        // waiting out its patience (10 s), and releases it: the thread that
        // comes back serves the others.
        let (lanes, release) = held_b_c();
        lanes.flush(&[0, 1, 2]);
        assert!(
            lanes.wait(Duration::from_secs(5), |l| l.patient() == 1),
            "a spare waits while the first bridge's call lasts"
        );
        let _ = release.send(());
        assert!(lanes.wait(Duration::from_secs(5), |l| l.served().len() == 3));
        let served = lanes.served();
        assert_eq!(
            served.iter().map(|(lane, _)| *lane).collect::<Vec<_>>(),
            ["held", "b", "c"]
        );
        assert!(
            served.iter().all(|(_, thread)| *thread == served[0].1),
            "one thread served the flush: {served:?}"
        );
    }

    #[test]
    fn a_bridge_that_blocks_holds_up_the_others_for_the_spares_patience() {
        // The first bridge's call returns only once `b` has had its item (or
        // after 10 s): the spare the flush woke serves `b` after its
        // patience.
        let patience = Duration::from_millis(20);
        let (opened, gate) = mpsc::channel();
        let lanes = Lanes::new(
            patience,
            vec![("blocks", held_until(gate)), ("b", telling(opened))],
        );
        let started = Instant::now();
        lanes.flush(&[0, 1]);
        assert!(lanes.wait(Duration::from_secs(15), |l| l.served().len() == 2));
        let took = started.elapsed();
        let bound = patience * 3 + Duration::from_secs(2);
        println!("both bridges served {took:?} after the flush (patience {patience:?})");
        let served = lanes.served();
        assert_ne!(served[0].1, served[1].1, "{served:?}");
        assert!(
            took < bound,
            "the blocking bridge held up the other for {took:?}"
        );
    }

    #[test]
    fn a_flush_during_a_call_wakes_a_thread_for_each_bridge_that_may_block() {
        // `c`'s call is under way when `a` and `b` are flushed; `c` and `a`
        // both return only once `b` has had its item. The thread woken for
        // the flush is a spare (a call is under way): after its patience it
        // takes `a` with `b` still ready, so it must wake a third thread
        // before it calls `a`.
        let patience = Duration::from_millis(20);
        let (opened_a, gate_a) = mpsc::channel();
        let (opened_c, gate_c) = mpsc::channel();
        let lanes = Lanes::new(
            patience,
            vec![
                ("a", held_until(gate_a)),
                (
                    "b",
                    Box::new(move || {
                        let _ = opened_a.send(());
                        let _ = opened_c.send(());
                    }),
                ),
                ("c", held_until(gate_c)),
            ],
        );
        lanes.flush(&[2]);
        assert!(lanes.wait(Duration::from_secs(5), |l| l.serving() == 1));
        let started = Instant::now();
        lanes.flush(&[0, 1]);
        assert!(lanes.wait(Duration::from_secs(25), |l| l.served().len() == 3));
        let took = started.elapsed();
        let bound = patience * 3 + Duration::from_secs(2);
        println!("all three served {took:?} after the second flush (patience {patience:?})");
        assert!(took < bound, "a blocking bridge held up `b` for {took:?}");
    }

    #[test]
    fn a_bridge_queued_while_no_call_is_under_way_does_not_wait_for_a_spare() {
        // A spare waits out a 10 s patience after the first flush; the
        // thread back from the held call serves `b` and parks. A bridge
        // queued then is served at once: the spare's wait is cut short.
        let (lanes, release) = held_b_c();
        lanes.flush(&[0, 1]);
        assert!(lanes.wait(Duration::from_secs(5), |l| l.patient() == 1));
        let _ = release.send(());
        assert!(lanes.wait(Duration::from_secs(5), |l| l.served().len() == 2
            && l.crew.shared.lock().idle.len() == 2
            && l.patient() == 1));
        let started = Instant::now();
        lanes.flush(&[2]);
        assert!(lanes.wait(Duration::from_secs(15), |l| l.served().len() == 3));
        let took = started.elapsed();
        println!("`c` served {took:?} after its flush");
        assert!(
            took < Duration::from_secs(2),
            "`c` waited {took:?} for the spare"
        );
    }
}
