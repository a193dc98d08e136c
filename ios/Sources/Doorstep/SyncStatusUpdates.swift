extension DriverSession {
    /// The sync status (pending actions, wedged actions, last successful
    /// sync, last error) as an async sequence: the current status first, then
    /// every change, for a status bar's `for await` loop or `.task` modifier.
    ///
    /// Only the newest status is buffered: a status bar needs the latest
    /// value, not every step it missed, and the core's delivery thread never
    /// waits for a slow consumer. The last status the core publishes is
    /// therefore always delivered.
    ///
    /// The stream owns its core subscription: when the consumer stops (its
    /// task is cancelled, or the stream is dropped) the subscription is
    /// cancelled. The stream finishes by itself once the session is released.
    public func syncStatusUpdates() -> AsyncStream<SyncStatus> {
        let (stream, continuation) = AsyncStream.makeStream(of: SyncStatus.self, bufferingPolicy: .bufferingNewest(1))
        let subscription = subscribeSync(observer: SyncStatusStreamObserver(continuation))
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }
}

/// Bridges the core's sync observer callback to an `AsyncStream`.
///
/// Holds only the continuation (which is `Sendable`), so it is safe to call
/// from the core's delivery thread.
final class SyncStatusStreamObserver: SyncObserver {
    private let continuation: AsyncStream<SyncStatus>.Continuation

    init(_ continuation: AsyncStream<SyncStatus>.Continuation) {
        self.continuation = continuation
    }

    func onSyncStatus(status: SyncStatus) {
        continuation.yield(status)
    }

    /// The core lets go of an observer when its subscription is cancelled or
    /// its session is gone; finishing ends a waiting `for await` loop.
    deinit {
        continuation.finish()
    }
}
