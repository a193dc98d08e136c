import Doorstep
import Foundation
import XCTest

/// Errors from the core arrive as `DoorstepError` cases with their fields, so
/// the shell can show the driver what is wrong.
final class ErrorTests: DoorstepTestCase {
    func testIllegalTransitionIsATypedErrorAndChangesNothing() async throws {
        let (session, ids) = try await sessionWithSample()

        let viaAsync = await doorstepError { try await session.apply(jobId: ids[0], transition: .deliver) }
        XCTAssertEqual(viaAsync, .InvalidTransition(from: .assigned, to: .delivered))

        let viaBlocking = await doorstepError { try session.applyBlocking(jobId: ids[0], transition: .deliver) }
        guard case let .InvalidTransition(from, to)? = viaBlocking else {
            return XCTFail("expected InvalidTransition, got \(String(describing: viaBlocking))")
        }
        XCTAssertEqual(from, .assigned)
        XCTAssertEqual(to, .delivered)

        let job = try session.job(jobId: ids[0])
        XCTAssertEqual(job.state, .assigned)
        XCTAssertEqual(job.version, 0)
        XCTAssertEqual(try session.history(jobId: ids[0]).count, 1)
    }

    func testUnknownJobIsNotFound() async throws {
        let (session, _) = try await sessionWithSample()
        let missing = UUID()

        let error = await doorstepError { try session.job(jobId: missing) }
        guard case let .NotFound(what, id)? = error else {
            return XCTFail("expected NotFound, got \(String(describing: error))")
        }
        XCTAssertEqual(what, "job")
        XCTAssertEqual(UUID(uuidString: id), missing)
    }

    func testBadDocumentNamesTheFieldAndImportsNothing() async throws {
        // The sample with one drop-off latitude out of range.
        let data = try XCTUnwrap(Fixture.mallPickupRun().data(using: .utf8))
        var document = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        var jobs = try XCTUnwrap(document["jobs"] as? [[String: Any]])
        var dropoff = try XCTUnwrap(jobs[3]["dropoff"] as? [String: Any])
        var location = try XCTUnwrap(dropoff["location"] as? [String: Any])
        location["lat"] = 91.0
        dropoff["location"] = location
        jobs[3]["dropoff"] = dropoff
        document["jobs"] = jobs
        let bad = try XCTUnwrap(String(data: JSONSerialization.data(withJSONObject: document), encoding: .utf8))

        let session = try DriverSession.open(at: databaseURL())
        let error = await doorstepError { try await session.importDocument(json: bad) }
        guard case let .InvalidInput(field, reason)? = error else {
            return XCTFail("expected InvalidInput, got \(String(describing: error))")
        }
        XCTAssertEqual(field, "jobs[3].dropoff.location.lat")
        XCTAssertTrue(reason.contains("latitude"), reason)
        XCTAssertEqual(try session.jobs(), [], "a rejected document imports nothing")
    }

    func testGarbageFileIsACorruptDatabaseNamingThePath() throws {
        let url = databaseURL("garbage.db")
        var generator = SystemRandomNumberGenerator()
        let garbage = Data((0..<64 * 1024).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try garbage.write(to: url)

        let error = doorstepErrorSync { try DriverSession.open(at: url) }
        guard case let .CorruptDatabase(path, reason)? = error else {
            return XCTFail("expected CorruptDatabase, got \(String(describing: error))")
        }
        XCTAssertEqual(path, url.path)
        XCTAssertFalse(reason.isEmpty)
        XCTAssertEqual(try Data(contentsOf: url), garbage, "a corrupt file is left as it was")
    }
}
