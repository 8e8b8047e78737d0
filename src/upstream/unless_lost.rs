//! A request to an upstream raced against the loss of its connection (a pod deleted, a
//! process gone): `UpstreamConnection::unless_lost` builds it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::UpstreamError;

pin_project_lite::pin_project! {
    /// `fut`, or `Gone` once `lost` resolves first. Written out rather than `tokio::select!`
    /// in an `async fn`, which would hold `fut` twice over (argument and select state) in a
    /// future that every upstream call moves.
    pub(super) struct UnlessLost<F, L> {
        #[pin]
        pub(super) fut: F,
        #[pin]
        pub(super) lost: L,
    }
}

impl<F: Future, L: Future<Output = UpstreamError>> Future for UnlessLost<F, L> {
    type Output = Result<F::Output, UpstreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        this.lost.poll(cx).map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_request_wins_unless_the_connection_is_lost_first() {
        let done = UnlessLost {
            fut: std::future::ready(7),
            lost: std::future::pending::<UpstreamError>(),
        };
        assert!(matches!(done.await, Ok(7)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let lost = UnlessLost {
            fut: std::future::pending::<u8>(),
            lost: async move {
                let _ = rx.await;
                UpstreamError::Gone("pod deleted".into())
            },
        };
        tx.send(()).unwrap();
        assert!(matches!(lost.await, Err(UpstreamError::Gone(why)) if why == "pod deleted"));
    }
}
