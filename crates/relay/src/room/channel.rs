//! A room's inbox: a bounded many-to-one queue of [`RoomMsg`](super::RoomMsg)s whose buffer a
//! sleeping room gives back.
//!
//! Why not `tokio::sync::mpsc`: it allocates a block of 32 slots with the channel and keeps it
//! for the channel's life. With 48-byte messages that block and the channel were 2.1 KB of the
//! 13.4 KB of heap an idle room costs (heaptrack, 2,000 sleeping rooms). Here the messages wait
//! in a `VecDeque` that [`Receiver::shrink_to_fit`] empties of its capacity when the room goes
//! to sleep, and the channel itself is a lock, a semaphore (the bound) and a `Notify`.
//!
//! The semantics are tokio's: a sender waits for room in the queue (a fast writer is slowed by
//! TCP backpressure, never dropped); the receiver takes what is queued even after [`close`],
//! and hears the end once the queue is empty and no sender is left; a [`WeakSender`] does not
//! keep the channel open.
//!
//! [`close`]: Receiver::close

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    closed: bool,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    /// Free places in the queue: a sender takes one before it pushes, the receiver gives one
    /// back for each message it takes.
    places: Semaphore,
    /// Wakes the receiver. `notify_one` keeps a permit when the receiver is not waiting, so a
    /// message pushed between its look at the queue and its wait still wakes it.
    arrived: Notify,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().expect("room channel lock")
    }
}

/// The channel is closed: the message comes back.
#[derive(Debug)]
pub struct Closed<T>(pub T);

#[derive(Debug)]
pub enum TrySendError<T> {
    /// The queue is at its bound.
    Full(T),
    Closed(T),
}

pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// A sender that does not keep the channel open.
pub struct WeakSender<T> {
    chan: Arc<Chan<T>>,
}

pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// A channel that holds at most `bound` messages.
pub fn channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            closed: false,
        }),
        places: Semaphore::new(bound),
        arrived: Notify::new(),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

impl<T> Sender<T> {
    /// Waits for a place in the queue, then queues `msg`.
    pub async fn send(&self, msg: T) -> Result<(), Closed<T>> {
        match self.chan.places.acquire().await {
            Ok(place) => place.forget(),
            Err(_) => return Err(Closed(msg)),
        }
        self.push(msg).map_err(Closed)
    }

    /// Queues `msg` if there is a place now.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        match self.chan.places.try_acquire() {
            Ok(place) => place.forget(),
            Err(TryAcquireError::NoPermits) => return Err(TrySendError::Full(msg)),
            Err(TryAcquireError::Closed) => return Err(TrySendError::Closed(msg)),
        }
        self.push(msg).map_err(TrySendError::Closed)
    }

    /// With a place taken.
    fn push(&self, msg: T) -> Result<(), T> {
        let mut state = self.chan.lock();
        if state.closed {
            return Err(msg);
        }
        state.queue.push_back(msg);
        drop(state);
        self.chan.arrived.notify_one();
        Ok(())
    }

    /// Whether the receiver has closed the channel or is gone.
    pub fn is_closed(&self) -> bool {
        self.chan.lock().closed
    }

    pub fn downgrade(&self) -> WeakSender<T> {
        WeakSender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.lock().senders += 1;
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.chan.lock();
        state.senders -= 1;
        let last = state.senders == 0;
        drop(state);
        if last {
            self.chan.arrived.notify_one();
        }
    }
}

impl<T> WeakSender<T> {
    /// A sender, unless every sender is gone.
    pub fn upgrade(&self) -> Option<Sender<T>> {
        let mut state = self.chan.lock();
        if state.senders == 0 {
            return None;
        }
        state.senders += 1;
        Some(Sender {
            chan: self.chan.clone(),
        })
    }
}

/// What the receiver finds.
enum Found<T> {
    Message(T),
    Nothing,
    End,
}

impl<T> Receiver<T> {
    /// The next message; None once the queue is empty and the channel closed or every sender
    /// gone.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.take() {
                Found::Message(msg) => return Some(msg),
                Found::End => return None,
                Found::Nothing => self.chan.arrived.notified().await,
            }
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        match self.take() {
            Found::Message(msg) => Some(msg),
            Found::Nothing | Found::End => None,
        }
    }

    /// Moves up to `max` queued messages to `into`, without waiting; returns how many.
    pub fn drain_into(&mut self, into: &mut Vec<T>, max: usize) -> usize {
        let mut state = self.chan.lock();
        let n = max.min(state.queue.len());
        into.extend(state.queue.drain(..n));
        drop(state);
        self.chan.places.add_permits(n);
        n
    }

    fn take(&mut self) -> Found<T> {
        let mut state = self.chan.lock();
        match state.queue.pop_front() {
            Some(msg) => {
                drop(state);
                self.chan.places.add_permits(1);
                Found::Message(msg)
            }
            None if state.closed || state.senders == 0 => Found::End,
            None => Found::Nothing,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.chan.lock().queue.is_empty()
    }

    /// No message is taken any more; what is queued can still be received.
    pub fn close(&mut self) {
        self.chan.lock().closed = true;
        // Wakes every sender waiting for a place: they get their message back.
        self.chan.places.close();
    }

    /// Gives back the queue's spare capacity (all of it when empty).
    pub fn shrink_to_fit(&mut self) {
        self.chan.lock().queue.shrink_to_fit();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // Dropped now, not when the last sender goes: a message may hold a waiter's reply
        // channel (a shutdown), which must hear that the room is gone.
        let queued = std::mem::take(&mut self.chan.lock().queue);
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn messages_arrive_in_order_and_the_end_comes_after_the_last() {
        rt().block_on(async {
            let (tx, mut rx) = channel(8);
            let tx2 = tx.clone();
            tx.send(1).await.unwrap();
            tx2.send(2).await.unwrap();
            drop(tx);
            tx2.try_send(3).unwrap();
            drop(tx2);
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(rx.recv().await, Some(2));
            assert_eq!(rx.recv().await, Some(3));
            assert_eq!(rx.recv().await, None, "every sender gone, queue empty");
        });
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_message_and_for_the_last_sender() {
        rt().block_on(async {
            let (tx, mut rx) = channel::<u8>(8);
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send(7).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
            assert_eq!(rx.recv().await, Some(7));
            assert_eq!(rx.recv().await, None);
            sender.await.unwrap();
        });
    }

    #[test]
    fn a_full_queue_holds_senders_back_until_the_receiver_takes() {
        rt().block_on(async {
            let (tx, mut rx) = channel(2);
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
            assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
            let waiting = tx.clone();
            let third = tokio::spawn(async move { waiting.send(3).await.is_ok() });
            tokio::task::yield_now().await;
            assert!(!third.is_finished(), "no place yet");
            let mut got = Vec::new();
            assert_eq!(rx.drain_into(&mut got, 10), 2);
            assert!(third.await.unwrap());
            assert_eq!(rx.recv().await, Some(3));
            assert_eq!(got, vec![1, 2]);
        });
    }

    #[test]
    fn drain_into_takes_at_most_max_and_frees_as_many_places() {
        let (tx, mut rx) = channel(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(rx.drain_into(&mut got, 2), 2);
        assert_eq!(got, vec![0, 1]);
        tx.try_send(3).unwrap();
        tx.try_send(4).unwrap();
        assert!(matches!(tx.try_send(5), Err(TrySendError::Full(5))));
        assert_eq!(rx.drain_into(&mut got, 10), 3);
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert_eq!(rx.drain_into(&mut got, 10), 0);
    }

    #[test]
    fn close_refuses_new_messages_hands_back_waiting_ones_and_keeps_the_queued() {
        rt().block_on(async {
            let (tx, mut rx) = channel(1);
            tx.send(1).await.unwrap();
            let waiting = tx.clone();
            let blocked = tokio::spawn(async move { waiting.send(2).await });
            tokio::task::yield_now().await;
            rx.close();
            assert!(matches!(blocked.await.unwrap(), Err(Closed(2))));
            assert!(tx.is_closed());
            assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
            assert!(matches!(tx.send(4).await, Err(Closed(4))));
            assert!(!rx.is_empty());
            assert_eq!(
                rx.recv().await,
                Some(1),
                "what was queued is still received"
            );
            assert_eq!(rx.recv().await, None);
        });
    }

    #[test]
    fn a_weak_sender_does_not_keep_the_channel_open() {
        rt().block_on(async {
            let (tx, mut rx) = channel::<u8>(4);
            let weak = tx.downgrade();
            let strong = weak.upgrade().expect("a sender is left");
            drop(tx);
            strong.send(1).await.unwrap();
            drop(strong);
            assert!(weak.upgrade().is_none());
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(rx.recv().await, None);
        });
    }

    #[test]
    fn dropping_the_receiver_drops_what_is_queued_and_closes() {
        let (tx, rx) = channel(4);
        let (done, heard) = std::sync::mpsc::channel::<()>();
        tx.try_send(done).unwrap();
        drop(rx);
        assert!(
            heard.recv().is_err(),
            "the queued sender was dropped with the receiver"
        );
        assert!(tx.is_closed());
    }

    #[test]
    fn shrink_to_fit_gives_back_an_empty_queue_s_capacity() {
        let (tx, mut rx) = channel(64);
        for i in 0..40 {
            tx.try_send(i).unwrap();
        }
        let mut got = Vec::new();
        rx.drain_into(&mut got, 64);
        assert!(rx.chan.lock().queue.capacity() >= 40);
        rx.shrink_to_fit();
        assert_eq!(rx.chan.lock().queue.capacity(), 0);
    }
}
