//! Loopix timing, sans-IO: exponential per-hop delays chosen by the sender, a node's
//! bounded delay queue, and the client's Poisson send schedule with cover traffic.
//!
//! Times are `Duration`s since an arbitrary origin the caller owns (a monotonic clock in a
//! node, a simulated one in tests).

use std::{cmp::Reverse, collections::BinaryHeap, time::Duration};

use rand::Rng;

/// Draws an exponential duration with the given mean, capped at `cap`.
pub fn exponential(rng: &mut impl Rng, mean: Duration, cap: Duration) -> Duration {
    if mean.is_zero() {
        return Duration::ZERO;
    }
    // Inverse transform: −mean·ln(U) with U uniform in (0, 1].
    let uniform: f64 = 1.0 - rng.r#gen::<f64>();
    mean.mul_f64(-uniform.ln()).min(cap)
}

/// The per-hop delays a sender puts in a packet's header.
pub fn hop_delays(rng: &mut impl Rng, hops: usize, mean: Duration, cap: Duration) -> Vec<Duration> {
    (0..hops).map(|_| exponential(rng, mean, cap)).collect()
}

/// A node's queue of packets waiting out their delays, bounded in length.
pub struct DelayQueue<T> {
    heap: BinaryHeap<Reverse<(Duration, u64, Slot<T>)>>,
    capacity: usize,
    cap: Duration,
    sequence: u64,
}

/// A queue entry; ordered by due time and arrival only, never by content.
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> DelayQueue<T> {
    /// A queue of at most `capacity` packets; a header delay above `cap` is cut to `cap`.
    pub fn new(capacity: usize, cap: Duration) -> Self {
        Self {
            heap: BinaryHeap::new(),
            capacity,
            cap,
            sequence: 0,
        }
    }

    /// Holds `item` until `now + delay` (delay capped). `Err(item)` when the queue is full:
    /// the caller drops it (a full queue must not grow without bound under a flood).
    pub fn push(&mut self, now: Duration, delay: Duration, item: T) -> Result<(), T> {
        if self.heap.len() >= self.capacity {
            return Err(item);
        }
        self.sequence += 1;
        self.heap.push(Reverse((
            now + delay.min(self.cap),
            self.sequence,
            Slot(item),
        )));
        Ok(())
    }

    /// Everything due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Duration) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(Reverse((due, _, _))) = self.heap.peek() {
            if *due > now {
                break;
            }
            if let Some(Reverse((_, _, Slot(item)))) = self.heap.pop() {
                out.push(item);
            }
        }
        out
    }

    /// When the next item falls due, if any.
    pub fn next_due(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// What a client sends at one tick of its Poisson schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Send<T> {
    /// A real packet from the queue.
    Real(T),
    /// A drop (cover) packet: the queue was empty.
    Drop,
}

/// A Loopix client's sending schedule: at Poisson times of rate `λ` it sends a real packet
/// if it has one and a drop packet otherwise, so an observer sees the same stream whether
/// or not the user is active. Loop packets (to itself, to detect active attacks) run on
/// their own, slower Poisson schedule.
pub struct ClientSchedule<T> {
    queue: std::collections::VecDeque<T>,
    mean_gap: Duration,
    loop_mean_gap: Duration,
    next_send: Duration,
    next_loop: Duration,
}

impl<T> ClientSchedule<T> {
    /// A schedule with mean gaps `1/λ` for the main stream and `1/λ_loop` for loops.
    pub fn new(
        rng: &mut impl Rng,
        now: Duration,
        mean_gap: Duration,
        loop_mean_gap: Duration,
    ) -> Self {
        Self {
            queue: Default::default(),
            mean_gap,
            loop_mean_gap,
            next_send: now + exponential(rng, mean_gap, Duration::MAX),
            next_loop: now + exponential(rng, loop_mean_gap, Duration::MAX),
        }
    }

    /// Queues a real packet for the next send tick.
    pub fn enqueue(&mut self, packet: T) {
        self.queue.push_back(packet);
    }

    /// When the caller should next call [`ClientSchedule::tick`].
    pub fn next_wakeup(&self) -> Duration {
        self.next_send.min(self.next_loop)
    }

    /// What to send at `now`: the stream packet (real or drop) and the loop packet, if due.
    /// Returns `(stream, loops)`. A late tick sends one of each at most, never a burst for
    /// every slot it missed: bursts would stand out on the wire, and a client slower than
    /// `λ` would fall ever further behind; the next times are drawn from `now` instead.
    pub fn tick(&mut self, rng: &mut impl Rng, now: Duration) -> (Vec<Send<T>>, usize) {
        let mut stream = Vec::new();
        if self.next_send <= now {
            stream.push(match self.queue.pop_front() {
                Some(packet) => Send::Real(packet),
                None => Send::Drop,
            });
            self.next_send = now + exponential(rng, self.mean_gap, Duration::MAX);
        }
        let mut loops = 0;
        if self.next_loop <= now {
            loops = 1;
            self.next_loop = now + exponential(rng, self.loop_mean_gap, Duration::MAX);
        }
        (stream, loops)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(11)
    }

    #[test]
    fn delays_follow_the_exponential_distribution() {
        let mut rng = rng();
        let mean = Duration::from_millis(50);
        let samples: Vec<f64> = (0..20_000)
            .map(|_| exponential(&mut rng, mean, Duration::MAX).as_secs_f64() * 1000.0)
            .collect();
        let average = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((average - 50.0).abs() < 2.0, "mean {average}");
        // The median of an exponential is mean·ln 2.
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        assert!(
            (median - 50.0 * std::f64::consts::LN_2).abs() < 2.0,
            "median {median}"
        );
        // The cap holds.
        let cap = Duration::from_millis(60);
        assert!((0..1_000).all(|_| exponential(&mut rng, mean, cap) <= cap));
        assert_eq!(exponential(&mut rng, Duration::ZERO, cap), Duration::ZERO);
    }

    #[test]
    fn the_queue_reorders_by_delay_and_is_bounded() {
        let mut rng = rng();
        let mut queue = DelayQueue::new(1_000, Duration::from_secs(1));
        let now = Duration::ZERO;
        for i in 0..100u32 {
            let delay = exponential(&mut rng, Duration::from_millis(20), Duration::from_secs(1));
            queue.push(now, delay, i).unwrap();
        }
        let out = queue.pop_due(Duration::from_secs(2));
        assert_eq!(out.len(), 100);
        assert_ne!(
            out,
            (0..100).collect::<Vec<_>>(),
            "output order differs from input"
        );
        // Nothing comes out before it is due; a flood beyond capacity is refused.
        let mut small = DelayQueue::new(2, Duration::from_secs(1));
        small.push(now, Duration::from_millis(10), 'a').unwrap();
        small.push(now, Duration::from_millis(5), 'b').unwrap();
        assert_eq!(small.push(now, Duration::ZERO, 'c'), Err('c'));
        assert!(small.pop_due(Duration::from_millis(4)).is_empty());
        assert_eq!(small.next_due(), Some(Duration::from_millis(5)));
        assert_eq!(small.pop_due(Duration::from_millis(10)), vec!['b', 'a']);
        // Header delays above the cap are cut to it.
        let mut capped = DelayQueue::new(2, Duration::from_millis(5));
        capped.push(now, Duration::from_secs(3600), 'x').unwrap();
        assert_eq!(capped.pop_due(Duration::from_millis(5)), vec!['x']);
    }

    #[test]
    fn the_client_sends_at_poisson_times_with_cover_when_idle() {
        let mut rng = rng();
        let mean = Duration::from_millis(10);
        let mut schedule = ClientSchedule::new(&mut rng, Duration::ZERO, mean, mean * 10);
        schedule.enqueue("real-1");
        schedule.enqueue("real-2");
        let (mut sent, mut loops) = (Vec::new(), 0);
        let mut now = Duration::ZERO;
        while now < Duration::from_secs(100) {
            now = schedule.next_wakeup();
            let (stream, looped) = schedule.tick(&mut rng, now);
            sent.extend(stream);
            loops += looped;
        }
        // Real packets first, in order; the rest of the stream is cover.
        assert_eq!(sent[0], Send::Real("real-1"));
        assert_eq!(sent[1], Send::Real("real-2"));
        assert!(sent[2..].iter().all(|s| *s == Send::Drop));
        // About λ·t packets and λ_loop·t loops.
        assert!(
            (9_500..10_500).contains(&sent.len()),
            "{} sends",
            sent.len()
        );
        assert!((900..1_100).contains(&loops), "{loops} loops");
    }

    #[test]
    fn a_late_tick_sends_one_packet_not_a_burst() {
        let mut rng = rng();
        let mut schedule = ClientSchedule::new(
            &mut rng,
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(10),
        );
        schedule.enqueue("real");
        // A whole second late: a thousand slots missed.
        let (stream, loops) = schedule.tick(&mut rng, Duration::from_secs(1));
        assert_eq!(stream, vec![Send::Real("real")]);
        assert_eq!(loops, 1);
        assert!(schedule.next_wakeup() > Duration::from_secs(1));
    }
}
