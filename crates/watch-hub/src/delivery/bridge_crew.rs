//! [`BridgeCrew`]: the threads that call the bridges. Any crew thread serves
//! any bridge (one thread at a time per bridge, so its calls stay in
//! order), and one wake-up usually serves them all.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, Weak};

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

/// Waking an idle thread costs about 8 µs of the waker's time on the target
/// machines and tens of µs until the thread runs (BENCHMARKS.md), and the three
/// bridges of a switch are all woken at once. One thread per bridge paid
/// that three times in a row before the last bridge saw the switch; the crew
/// pays it once or twice:
///
/// - A bridge with work goes into the ready queue, and the waker makes sure
///   that one crew thread is awake and not inside a bridge call. That
///   thread takes the ready bridges one after the other; a bridge call
///   takes microseconds, so it usually serves all of them before a second
///   thread is even running.
/// - **Isolation.** A thread that takes a bridge while others are still
///   ready makes sure another thread is free first (it wakes one before its
///   call), so a bridge that blocks never holds up the others: the other
///   thread serves them. There is one thread per bridge, so when every
///   thread is inside a call, every bridge with work is being served.
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
}

struct CrewState<W: LaneWork> {
    lanes: Vec<Arc<Lane<W>>>,
    /// Indices into `lanes` of the bridges waiting for a thread.
    ready: VecDeque<usize>,
    threads: Vec<Thread>,
    handles: Vec<JoinHandle<()>>,
    /// Indices into `threads` of the parked ones.
    idle: Vec<usize>,
    /// Threads awake (or woken) and not inside a bridge call.
    free: usize,
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
    fn schedule(&self);
}

impl<W: LaneWork> Schedule for Lane<W> {
    fn schedule(&self) {
        if let Some(crew) = self.crew.upgrade() {
            crew.schedule(self, self.index);
        }
    }
}

/// What a consumer slot keeps to get its bridge served (weak: the lane
/// holds the slot through its cursor).
pub(crate) struct CrewLink {
    lane: Weak<dyn Schedule>,
}

impl CrewLink {
    /// The bridge has something new: queue it for a crew thread.
    pub(crate) fn schedule(&self) {
        if let Some(lane) = self.lane.upgrade() {
            lane.schedule();
        }
    }
}

impl<W: LaneWork> BridgeCrew<W> {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(CrewState {
                    lanes: Vec::new(),
                    ready: VecDeque::new(),
                    threads: Vec::new(),
                    handles: Vec::new(),
                    idle: Vec::new(),
                    free: 0,
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
            let wake: Vec<Thread> = idle.iter().map(|&i| state.threads[i].clone()).collect();
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
            "lanes {lanes:?} ready {:?} idle {:?} free {} stopping {}",
            state.ready, state.idle, state.free, state.stopping
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

    fn schedule(&self, lane: &Lane<W>, index: usize) {
        let before = lane
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| match state {
                IDLE => Some(QUEUED),
                SERVING => Some(NOTIFIED),
                // Already queued or noticed, or finished.
                _ => None,
            });
        // Only an idle lane joins the queue; a serving one is drained again.
        if before == Ok(IDLE) {
            let wake = {
                let mut state = self.lock();
                state.ready.push_back(index);
                state.wake_if_none_free()
            };
            unpark(wake);
        }
    }

    /// A crew thread: takes ready bridges until the crew stops.
    fn run(&self, me: usize) {
        loop {
            let (lane, wake) = {
                let mut state = self.lock();
                loop {
                    if let Some(index) = state.ready.pop_front() {
                        state.free -= 1;
                        // Another free thread for the bridges still ready,
                        // in case this call blocks.
                        let wake =
                            if state.ready.is_empty() || sync::mutation("no_wake_before_call") {
                                None
                            } else {
                                state.wake_if_none_free()
                            };
                        break (state.lanes[index].clone(), wake);
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
                }
            };
            unpark(wake);
            lane.serve();
            self.lock().free += 1;
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
