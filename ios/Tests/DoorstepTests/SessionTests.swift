import Doorstep
import Foundation
import XCTest

/// Plain calls across the FFI: synchronous, async, and state that outlives a
/// session.
final class SessionTests: DoorstepTestCase {
    func testSyncCallsOnAFreshDatabase() throws {
        let session = try DriverSession.open(at: databaseURL())

        XCTAssertEqual(try session.jobs(), [])
        XCTAssertEqual(session.observerHealth(), ObserverHealth(delivered: 0, failed: 0, lastError: nil))
        XCTAssertTrue(FileManager.default.fileExists(atPath: databaseURL().path), "open creates the database")

        let version = coreVersion()
        XCTAssertFalse(version.isEmpty)
        XCTAssertNotNil(version.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression), version)
    }

    func testImportAndApplyAreAwaitableAndPersistAcrossReopen() async throws {
        var session: DriverSession? = try DriverSession.open(at: databaseURL())

        let summary = try await session!.importDocument(json: Fixture.mallPickupRun())
        XCTAssertEqual(summary.created, 10)
        XCTAssertEqual(summary.updated, 0)
        XCTAssertEqual(summary.jobIds.count, 10)
        XCTAssertEqual(Set(summary.jobIds).count, 10, "job ids are distinct")

        let jobs = try session!.jobs()
        XCTAssertEqual(Set(jobs.map(\.reference)), Set(Fixture.references))
        XCTAssertEqual(Set(jobs.map(\.storeName)).count, 3)
        XCTAssertTrue(jobs.allSatisfy { $0.state == .assigned && $0.version == 0 }, "\(jobs.map(\.state))")

        let first = summary.jobIds[0]
        let accepted = try await session!.apply(jobId: first, transition: .accept)
        XCTAssertEqual(accepted.id, first)
        XCTAssertEqual(accepted.state, .accepted)
        XCTAssertEqual(accepted.version, 1)
        XCTAssertEqual(try session!.job(jobId: first), accepted)

        let history = try session!.history(jobId: first)
        XCTAssertEqual(history.map(\.kind), [.imported, .transitioned])
        XCTAssertEqual(history.map(\.toState), [.assigned, .accepted])
        XCTAssertEqual(history.last?.fromState, .assigned)

        // Release the session (uniffi objects free their Rust side on deinit)
        // and open the same file again.
        session = nil
        let reopened = try DriverSession.open(at: databaseURL())
        let again = try reopened.job(jobId: first)
        XCTAssertEqual(again.state, .accepted)
        XCTAssertEqual(again.version, 1)
        XCTAssertEqual(again.reference, accepted.reference)
        XCTAssertEqual(try reopened.jobs().count, 10)
        XCTAssertEqual(try reopened.history(jobId: first).count, 2)
    }

    func testBlockingApplyMatchesAsyncApply() async throws {
        let (session, ids) = try await sessionWithSample()

        let job = try session.applyBlocking(jobId: ids[1], transition: .accept)
        XCTAssertEqual(job.state, .accepted)
        let atPickup = try await session.apply(jobId: ids[1], transition: .arriveAtPickup)
        XCTAssertEqual(atPickup.state, .atPickup)
        XCTAssertEqual(atPickup.version, 2)
    }

    func testApplyAllIsAllOrNothing() async throws {
        let (session, ids) = try await sessionWithSample()

        let events = try await session.applyAll(actions: ids.prefix(3).map { JobAction(jobId: $0, transition: .accept) })
        XCTAssertEqual(events.map(\.jobId), Array(ids.prefix(3)))
        XCTAssertEqual(events.map(\.toState), [.accepted, .accepted, .accepted])
        XCTAssertEqual(events.map(\.sequence), events.map(\.sequence).sorted())

        // The second action is illegal (job 4 is only assigned): the first,
        // legal one must not be committed either.
        let error = await doorstepError {
            try await session.applyAll(actions: [
                JobAction(jobId: ids[0], transition: .arriveAtPickup),
                JobAction(jobId: ids[3], transition: .confirmPickup),
            ])
        }
        XCTAssertEqual(error, .InvalidTransition(from: .assigned, to: .pickedUp))
        XCTAssertEqual(try session.job(jobId: ids[0]).state, .accepted)
        XCTAssertEqual(try session.job(jobId: ids[3]).state, .assigned)
    }
}
