extension DriverSession {
    /// Every change to this session's jobs, in commit order, as an async
    /// sequence for `for await` loops and SwiftUI `.task` modifiers.
    ///
    /// The core calls observers on its own background thread; the observer
    /// behind this stream only yields into an unbounded buffer, so it never
    /// blocks that thread and never drops an event a slow screen has not read
    /// yet. Only changes committed after this call are delivered.
    ///
    /// The stream owns its core subscription: when the consumer stops (its
    /// task is cancelled, or the stream is dropped) the subscription is
    /// cancelled, so a dismissed screen stops receiving changes. The stream
    /// finishes by itself once the session is released.
    public func jobChanges() -> AsyncStream<JobEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: JobEvent.self)
        let subscription = subscribe(observer: JobEventStreamObserver(continuation))
        continuation.onTermination = { _ in subscription.cancel() }
        return stream
    }
}

/// Bridges the core's observer callback to an `AsyncStream`.
///
/// Holds only the continuation (which is `Sendable`), so it is safe to call
/// from the core's delivery thread.
final class JobEventStreamObserver: JobObserver {
    private let continuation: AsyncStream<JobEvent>.Continuation

    init(_ continuation: AsyncStream<JobEvent>.Continuation) {
        self.continuation = continuation
    }

    func onJobChanged(event: JobEvent) {
        continuation.yield(event)
    }

    /// The core lets go of an observer when its subscription is cancelled or
    /// its session is gone. Finishing here ends a `for await` loop that would
    /// otherwise wait forever on a session that can no longer change.
    deinit {
        continuation.finish()
    }
}
