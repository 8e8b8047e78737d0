//! A request's work run by the task that waits for its answer, and spawned only when that
//! task stops waiting: a dropped connection is not a cancellation, yet the common case costs
//! no task spawn and no hop between tasks (or threads) on the way back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

type Work = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Work that is polled while its owner awaits something else (`alongside`), and handed to the
/// runtime if the owner drops it unfinished. The default has no work (it runs elsewhere).
#[derive(Default)]
pub struct Detached {
    work: Option<Work>,
}

impl Detached {
    /// A panic in `work` ends only the work (the panic hook has logged it), as it ended only
    /// its own task when requests were spawned: the owner sees the work's channel close.
    pub fn new(work: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            // Combinators, not an `async` block: a block would hold `work` twice over.
            work: Some(Box::pin(AssertUnwindSafe(work).catch_unwind().map(drop))),
        }
    }

    /// Awaits `other` (typically the next message the work sends) while driving the work.
    pub async fn alongside<T>(&mut self, other: impl Future<Output = T>) -> T {
        let mut other = std::pin::pin!(other);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = other.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
            if self.work.is_some() && self.poll_work(cx).is_ready() {
                // The work just ended: what it sent last may have made `other` ready.
                return other.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await
    }

    /// Gives the work one more turn without waiting: what follows a request's answer (its
    /// audit row, metrics) normally completes here, and is spawned by `drop` if it does not.
    pub fn settle(&mut self) {
        if let Some(work) = self.work.as_mut()
            && work.as_mut().now_or_never().is_some()
        {
            self.work = None;
        }
    }

    /// Drives the work to its end.
    pub async fn finish(mut self) {
        std::future::poll_fn(|cx| self.poll_work(cx)).await
    }

    /// Hands the rest of the work to the runtime now.
    fn detach(&mut self) {
        if let Some(work) = self.work.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(work);
                }
                // Only at shutdown, when nothing could run it anyway.
                Err(_) => tracing::debug!("a request's work was dropped with the runtime"),
            }
        }
    }

    #[cfg(test)]
    fn is_done(&self) -> bool {
        self.work.is_none()
    }

    fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.work.as_mut() {
            None => Poll::Ready(()),
            Some(work) => {
                let done = work.as_mut().poll(cx);
                if done.is_ready() {
                    self.work = None;
                }
                done
            }
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.detach();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_work_runs_while_its_owner_waits_for_its_message() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut work = Detached::new(async move {
            tokio::task::yield_now().await;
            tx.send(1).unwrap();
            tokio::task::yield_now().await;
            tx.send(2).unwrap();
        });
        assert_eq!(work.alongside(rx.recv()).await, Some(1));
        assert_eq!(work.alongside(rx.recv()).await, Some(2));
        assert_eq!(work.alongside(rx.recv()).await, None, "the work ended");
        assert!(work.is_done());
    }

    #[tokio::test]
    async fn work_dropped_unfinished_runs_to_its_end_on_the_runtime() {
        let finished = Arc::new(AtomicBool::new(false));
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut work = Detached::new({
            let finished = finished.clone();
            async move {
                let _ = wait.await;
                finished.store(true, Ordering::SeqCst);
                let _ = done_tx.send(());
            }
        });
        // The owner stops waiting before the work is done, as when a client hangs up.
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            work.alongside(std::future::pending::<()>()),
        )
        .await;
        assert!(gave_up.is_err());
        drop(work);
        assert!(!finished.load(Ordering::SeqCst));
        release.send(()).unwrap();
        done_rx.await.expect("the detached work ran to its end");
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panic_in_the_work_ends_the_work_not_its_owner() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut work = Detached::new(async move {
            let _keep = tx;
            tokio::task::yield_now().await;
            panic!("a bug in the request");
        });
        assert_eq!(work.alongside(rx.recv()).await, None);
        assert!(work.is_done());
    }

    #[tokio::test]
    async fn settle_finishes_work_that_no_longer_waits() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ran_after = Arc::new(AtomicBool::new(false));
        let mut work = Detached::new({
            let ran_after = ran_after.clone();
            async move {
                tx.send(()).unwrap();
                tokio::task::yield_now().await;
                ran_after.store(true, Ordering::SeqCst);
            }
        });
        work.alongside(rx.recv()).await;
        assert!(
            !work.is_done(),
            "the message came before the work's last step"
        );
        work.settle();
        assert!(work.is_done());
        assert!(ran_after.load(Ordering::SeqCst));
    }
}
