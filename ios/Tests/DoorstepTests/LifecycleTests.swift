import Doorstep
import Foundation
import XCTest

/// Objects that cross the FFI are released when Swift lets go of them:
/// subscriptions when their stream's consumer stops, sessions on deinit.
final class LifecycleTests: DoorstepTestCase {
    func testCancellingTheConsumerCancelsTheSubscription() async throws {
        let (session, ids) = try await sessionWithSample()

        let consumer = StreamRecorder(session.jobChanges())
        _ = try await session.apply(jobId: ids[0], transition: .accept)
        let before = await consumer.waitFor(1)
        XCTAssertEqual(before.count, 1)
        await eventually { session.observerHealth().delivered == 1 }

        // Ends the `for await` loop; onTermination cancels the subscription.
        await consumer.stop()

        // A stream created and dropped without ever being iterated also
        // gives its subscription back.
        _ = session.jobChanges()

        let probe = StreamRecorder(session.jobChanges())
        defer { Task { await probe.stop() } }
        _ = try await session.apply(jobId: ids[0], transition: .arriveAtPickup)
        _ = try await session.apply(jobId: ids[0], transition: .confirmPickup)
        let probed = await probe.waitFor(2)
        XCTAssertEqual(probed.map(\.toState), [.atPickup, .pickedUp])

        // Deliveries are made in order, one event to every observer before
        // the next event; once the probe holds the second event the first is
        // fully counted. 1 (consumer) + 2 (probe) if the others are gone,
        // at least 5 if either were still subscribed.
        await eventually { session.observerHealth().delivered >= 3 }
        XCTAssertEqual(session.observerHealth().delivered, 3)
        XCTAssertEqual(session.observerHealth().failed, 0)
        XCTAssertEqual(consumer.received.count, 1, "nothing reached the cancelled consumer")
    }

    func testStreamFinishesWhenTheSessionIsReleased() async throws {
        var session: DriverSession? = try DriverSession.open(at: databaseURL())
        let changes = StreamRecorder(session!.jobChanges())
        _ = try await session!.importDocument(json: Fixture.mallPickupRun())
        let imported = await changes.waitFor(10)
        XCTAssertEqual(imported.count, 10)
        XCTAssertFalse(changes.isFinished)

        session = nil

        await eventually("the stream did not finish after its session was released") { changes.isFinished }
        XCTAssertEqual(changes.received.count, 10)
    }

    func testManySessionsOpenUseAndReleaseCleanly() async throws {
        let url = databaseURL()
        let ids = try await DriverSession.open(at: url).importDocument(json: Fixture.mallPickupRun()).jobIds
        let baseline = ResourceCounts.current()

        // Every job walks to delivered, one step per session.
        let steps: [(Transition, JobState)] = [
            (.accept, .accepted), (.arriveAtPickup, .atPickup), (.confirmPickup, .pickedUp),
            (.arriveAtDropoff, .atDropoff), (.deliver, .delivered),
        ]
        for round in 0..<(steps.count * ids.count) {
            let (transition, state) = steps[round / ids.count]
            let id = ids[round % ids.count]
            let session = try DriverSession.open(at: url)
            let changes = session.jobChanges()
            let subscription = session.subscribe(observer: RecordingObserver())
            XCTAssertEqual(try session.jobs().count, 10)
            XCTAssertEqual(try session.applyBlocking(jobId: id, transition: transition).state, state)
            if round.isMultiple(of: 2) { subscription.cancel() }
            withExtendedLifetime(changes) {}
        }

        let reopened = try DriverSession.open(at: url)
        let jobs = try reopened.jobs()
        XCTAssertEqual(jobs.count, 10)
        XCTAssertTrue(jobs.allSatisfy { $0.state == .delivered && $0.version == 5 }, "\(jobs.map(\.state))")
        XCTAssertEqual(try reopened.history(jobId: ids[0]).map(\.toState),
                       [.assigned, .accepted, .atPickup, .pickedUp, .atDropoff, .delivered])

        // 50 sessions were opened; the database files and observer threads of
        // all but the reopened one must be gone.
        if let baseline {
            await eventually("leaked: baseline \(baseline), now \(String(describing: ResourceCounts.current()))") {
                guard let now = ResourceCounts.current() else { return false }
                return now.observerThreads <= baseline.observerThreads + 1
                    && now.openFiles <= baseline.openFiles + 8
            }
        }
    }
}

/// Open files and core observer threads of this process, from /proc (Linux
/// only; nil elsewhere), to catch sessions that are never freed.
struct ResourceCounts: CustomStringConvertible {
    let openFiles: Int
    let observerThreads: Int

    static func current() -> ResourceCounts? {
        #if os(Linux)
        let fm = FileManager.default
        guard let fds = try? fm.contentsOfDirectory(atPath: "/proc/self/fd"),
              let tasks = try? fm.contentsOfDirectory(atPath: "/proc/self/task")
        else { return nil }
        // Thread names are cut to 15 bytes in /proc: "doorstep-observ".
        let observers = tasks.filter { task in
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            return comm.hasPrefix("doorstep-obs")
        }
        return ResourceCounts(openFiles: fds.count, observerThreads: observers.count)
        #else
        return nil
        #endif
    }

    var description: String { "\(openFiles) open files, \(observerThreads) observer threads" }
}
