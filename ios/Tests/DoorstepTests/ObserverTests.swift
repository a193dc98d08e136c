import Doorstep
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The core calls Swift observers from its own thread; `jobChanges()` turns
/// that into an `AsyncStream`.
final class ObserverTests: DoorstepTestCase {
    func testJobChangesDeliversImportAndTransitionsInCommitOrder() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let changes = StreamRecorder(session.jobChanges())
        defer { Task { await changes.stop() } }

        let summary = try await session.importDocument(json: Fixture.mallPickupRun())
        let first = summary.jobIds[0]
        _ = try await session.apply(jobId: first, transition: .accept)
        _ = try await session.apply(jobId: first, transition: .arriveAtPickup)
        _ = try await session.apply(jobId: summary.jobIds[1], transition: .decline)

        let events = await changes.waitFor(13)
        XCTAssertEqual(events.count, 13)
        XCTAssertEqual(events.prefix(10).map(\.kind), Array(repeating: .imported, count: 10))
        XCTAssertEqual(events.prefix(10).map(\.jobId), summary.jobIds, "imports arrive in document order")
        XCTAssertEqual(events.prefix(10).map(\.toState), Array(repeating: .assigned, count: 10))

        let transitions = events.suffix(3)
        XCTAssertEqual(transitions.map(\.kind), [.transitioned, .transitioned, .transitioned])
        XCTAssertEqual(transitions.map(\.jobId), [first, first, summary.jobIds[1]])
        XCTAssertEqual(transitions.map(\.fromState), [.assigned, .accepted, .assigned])
        XCTAssertEqual(transitions.map(\.toState), [.accepted, .atPickup, .declined])

        let sequences = events.map(\.sequence)
        XCTAssertEqual(sequences, sequences.sorted(), "commit order")
        XCTAssertEqual(Set(sequences).count, sequences.count, "no event delivered twice")

        // What the stream saw is what the database recorded.
        let recorded = try session.history(jobId: first)
        let seen = events.filter { $0.jobId == first }
        XCTAssertEqual(seen.map(\.sequence), recorded.map(\.sequence))
        XCTAssertEqual(seen.map(\.toState), recorded.map(\.toState))
    }

    func testObserverIsCalledOnACoreThreadNotTheCallersThread() async throws {
        let (session, ids) = try await sessionWithSample()
        let observer = RecordingObserver()
        let subscription = session.subscribe(observer: observer)
        defer { subscription.cancel() }

        // A blocking call, so the calling thread is known.
        let caller = pthread_self()
        let callerName = currentThreadName()
        _ = try session.applyBlocking(jobId: ids[0], transition: .accept)

        let calls = await observer.waitFor(1)
        let call = try XCTUnwrap(calls.first)
        XCTAssertEqual(call.event.jobId, ids[0])
        XCTAssertEqual(call.event.toState, .accepted)
        XCTAssertEqual(pthread_equal(call.thread, caller), 0,
                       "observer ran on the caller's thread (\(callerName)); expected a core thread")
        XCTAssertFalse(call.isMainThread)
        #if os(Linux)
        // Foundation reports OS thread names on Linux: the core names its
        // delivery thread "doorstep-observers" (cut to 15 bytes by the OS).
        XCTAssertTrue(call.threadName.hasPrefix("doorstep-"), "observer ran on \"\(call.threadName)\"")
        #endif
    }

    /// A Swift observer that throws must not take the core down (or be
    /// unwound through Rust): the failure is recorded in `observerHealth()`
    /// and later changes still reach every observer.
    func testThrowingObserversAreRecordedAndDeliveryContinues() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let changes = StreamRecorder(session.jobChanges())
        defer { Task { await changes.stop() } }

        // A typed error.
        let typed = RecordingObserver(throwing: DoorstepError.Internal(reason: "screen went away"))
        let typedSubscription = session.subscribe(observer: typed)
        defer { typedSubscription.cancel() }

        let summary = try await session.importDocument(json: Fixture.mallPickupRun())
        _ = await changes.waitFor(10)
        _ = await typed.waitFor(10)
        await eventually("delivered: \(session.observerHealth())") { session.observerHealth().delivered == 10 }
        var health = session.observerHealth()
        XCTAssertEqual(health.delivered, 10, "only the stream succeeds")
        XCTAssertEqual(health.failed, 10, "the typed observer failed once per event")
        XCTAssertTrue(health.lastError?.contains("screen went away") == true, "\(String(describing: health.lastError))")

        // An error the FFI does not know: reaches the core as Internal.
        let untyped = RecordingObserver(throwing: ScreenCrashed())
        let untypedSubscription = session.subscribe(observer: untyped)
        defer { untypedSubscription.cancel() }

        _ = try await session.apply(jobId: summary.jobIds[0], transition: .accept)
        _ = try await session.apply(jobId: summary.jobIds[0], transition: .arriveAtPickup)

        let events = await changes.waitFor(12)
        XCTAssertEqual(events.suffix(2).map(\.toState), [.accepted, .atPickup], "later changes still arrive")
        let typedCalls = await typed.waitFor(12)
        let untypedCalls = await untyped.waitFor(2)
        XCTAssertEqual(typedCalls.count, 12)
        XCTAssertEqual(untypedCalls.map(\.event.toState), [.accepted, .atPickup])

        await eventually("delivered: \(session.observerHealth())") { session.observerHealth().delivered == 12 }
        health = session.observerHealth()
        XCTAssertEqual(health.delivered, 12)
        XCTAssertEqual(health.failed, 14)
        let lastError = try XCTUnwrap(health.lastError)
        XCTAssertTrue(lastError.contains("callback threw"), lastError)
        XCTAssertTrue(lastError.contains(ScreenCrashed().description), lastError)

        // And the session itself is unaffected.
        XCTAssertEqual(try session.job(jobId: summary.jobIds[0]).state, .atPickup)
    }
}

struct ScreenCrashed: Error, CustomStringConvertible {
    var description: String { "ScreenCrashed: view model deallocated" }
}
