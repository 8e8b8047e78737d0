//! A connection task that wakes itself while it runs (hyper's dispatchers signal their own
//! task when a request or response moves between them) is polled again at once. Left to tokio,
//! such a wake re-queues the task behind the others and wakes a parked sibling worker to steal
//! it: a futex wake and two context switches per exchange, which dominated a lone client's
//! latency.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Polls in one go that a future may ask for by waking itself; past them it yields to the
/// scheduler like any task (so a future that always wakes itself cannot hog its worker).
const REPOLLS: usize = 4;

#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    polling: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        // While the future is being polled, the poll loop sees `woken` and goes round again;
        // the SeqCst pair (here: store woken, load polling; there: store polling, load woken)
        // means at least one side acts on it.
        if !self.polling.load(SeqCst) {
            self.task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Repolled<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        waker: Waker,
    }
}

impl<F: Future> Repolled<F> {
    pub fn new(inner: F) -> Self {
        let signal = Arc::new(Signal::default());
        let waker = Waker::from(signal.clone());
        Self {
            inner,
            signal,
            waker,
        }
    }
}

impl<F: Future> Future for Repolled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.signal.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(this.waker);
        for _ in 0..REPOLLS {
            this.signal.polling.store(true, SeqCst);
            this.signal.woken.store(false, SeqCst);
            let polled = this.inner.as_mut().poll(&mut inner_cx);
            this.signal.polling.store(false, SeqCst);
            if polled.is_ready() {
                return polled;
            }
            if !this.signal.woken.load(SeqCst) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Wakes itself `times` times (during its poll), then is ready.
    struct SelfWaking {
        times: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, SeqCst);
            if self.times == 0 {
                return Poll::Ready(());
            }
            self.times -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn poll_once(f: Pin<&mut impl Future>, outer: &Arc<CountingWaker>) -> bool {
        let waker = Waker::from(outer.clone());
        f.poll(&mut Context::from_waker(&waker)).is_ready()
    }

    #[test]
    fn a_self_wake_is_a_repoll_not_a_reschedule() {
        let polls = Arc::new(AtomicUsize::new(0));
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut f = std::pin::pin!(Repolled::new(SelfWaking {
            times: 2,
            polls: polls.clone()
        }));
        assert!(poll_once(f.as_mut(), &outer), "done within one poll");
        assert_eq!(polls.load(SeqCst), 3);
        assert_eq!(outer.0.load(SeqCst), 0, "the task was never rescheduled");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_after_a_few_polls() {
        let polls = Arc::new(AtomicUsize::new(0));
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let mut f = std::pin::pin!(Repolled::new(SelfWaking {
            times: 100,
            polls: polls.clone()
        }));
        assert!(!poll_once(f.as_mut(), &outer));
        assert_eq!(polls.load(SeqCst), REPOLLS);
        assert_eq!(outer.0.load(SeqCst), 1, "yielded: rescheduled once");
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let outer = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut f = std::pin::pin!(Repolled::new(rx));
        assert!(!poll_once(f.as_mut(), &outer));
        tx.send(()).unwrap();
        assert_eq!(
            outer.0.load(SeqCst),
            1,
            "woken from outside: the task is woken"
        );
        assert!(poll_once(f.as_mut(), &outer));
    }
}
