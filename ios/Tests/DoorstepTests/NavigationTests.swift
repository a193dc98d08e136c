import Doorstep
import Foundation
import XCTest

/// Metres per degree of latitude, near enough for a test trace.
private let metresPerDegreeLatitude = 111_320.0

/// A short drive to `target`: from 500 m due south, north at 9 m/s with one
/// fix a second until 50 m short of it, then 15 fixes stopped at it (speed 0,
/// accuracy 5-8 m, a few metres of scatter).
private struct ArrivalTrace {
    let origin: GeoPoint
    /// 51 fixes, 0 m to 450 m north of the origin.
    let driving: [Fix]
    /// 15 fixes at the target, one a second after the driving ones.
    let stopped: [Fix]

    var all: [Fix] { driving + stopped }

    init(to target: GeoPoint, from start: Date) {
        let origin = GeoPoint(latitude: target.latitude - 500 / metresPerDegreeLatitude, longitude: target.longitude)
        self.origin = origin
        driving = (0...50).map { k in
            Fix(latitude: origin.latitude + Double(k) * 9 / metresPerDegreeLatitude, longitude: origin.longitude,
                horizontalAccuracyM: 6, speedMps: 9, courseDeg: 0, at: start.addingTimeInterval(Double(k)))
        }
        let scatter: [Double] = [-3, 2, 0, 4, -1]
        let drivingCount = driving.count
        stopped = (0..<15).map { k in
            let metres = scatter[k % scatter.count]
            return Fix(latitude: target.latitude + metres / metresPerDegreeLatitude,
                       longitude: target.longitude - metres / metresPerDegreeLatitude,
                       horizontalAccuracyM: 5 + Double(k % 4), speedMps: 0, courseDeg: nil,
                       at: start.addingTimeInterval(Double(drivingCount + k)))
        }
    }
}

/// Navigation across the FFI: a trace of fixes in, arrivals and job changes
/// out, state that survives a restart, and the completion policy.
final class NavigationTests: DoorstepTestCase {
    /// Now, to the whole second, so timestamps compare equal after a round
    /// trip through the core.
    private func now() -> Date {
        Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    }

    /// Imports the sample day into `session` and accepts job HPM-2402.
    private func acceptSampleJob(_ session: DriverSession) async throws -> DeliveryJob {
        _ = try await session.importDocument(json: Fixture.mallPickupRun())
        let id = try XCTUnwrap(try session.jobs().first { $0.reference == "HPM-2402" }).id
        let job = try await session.apply(jobId: id, transition: .accept)
        XCTAssertEqual(job.state, .accepted)
        return job
    }

    private func arrivals(_ snapshots: [NavSnapshot]) -> [NavEvent] {
        snapshots.flatMap(\.events).filter {
            if case .arrived = $0 { return true }
            return false
        }
    }

    func testShortTraceArrivesOnceAndMovesTheJobToAtPickup() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let job = try await acceptSampleJob(session)
        let store = job.pickup.store.location
        let trace = ArrivalTrace(to: store, from: now())

        let started = try session.startNavigation(origin: trace.origin, options: defaultNavigationOptions())
        XCTAssertEqual(started.stops.map(\.jobId), [job.id, job.id])
        XCTAssertEqual(started.stops.map(\.kind), [.pickup, .dropoff])
        XCTAssertEqual(started.stops.first?.location, store)
        XCTAssertEqual(started.stops.last?.location, job.dropoff.location)
        XCTAssertEqual(started.state.currentStop, 0)
        XCTAssertEqual(started.state.phase, .approaching)
        XCTAssertEqual(started.state.acceptedFixes, 0)
        XCTAssertTrue((490...510).contains(started.state.remainingLegM), "first leg \(started.state.remainingLegM) m")
        XCTAssertGreaterThan(started.state.remainingRouteM, started.state.remainingLegM)
        XCTAssertEqual(started.events, [])

        let driving = try trace.driving.map { try session.pushFix(fix: $0) }
        XCTAssertEqual(driving.flatMap(\.events), [], "no event while driving")
        XCTAssertTrue(driving.allSatisfy { $0.state.phase == .approaching })
        let remaining = driving.map(\.state.remainingLegM)
        XCTAssertTrue(zip(remaining, remaining.dropFirst()).allSatisfy { $1 < $0 }, "remaining distance shrinks: \(remaining)")
        XCTAssertTrue((40...60).contains(remaining.last ?? 0), "50 m to go, got \(String(describing: remaining.last))")
        XCTAssertNotNil(driving.last?.state.etaNextStop)
        XCTAssertEqual(try session.job(jobId: job.id).state, .accepted)

        let stopped = try trace.stopped.map { try session.pushFix(fix: $0) }
        let all = driving + stopped

        // Three slow fixes inside the fence: the third one arrives.
        let arrived = NavEvent.arrived(stopIndex: 0, jobId: job.id, kind: .pickup)
        XCTAssertEqual(arrivals(all), [arrived])
        let arrivedAt = try XCTUnwrap(all.firstIndex { !$0.events.isEmpty })
        XCTAssertEqual(arrivedAt, trace.driving.count + 2)
        XCTAssertEqual(all[arrivedAt].events, [arrived])

        // Automatic mode: the arrival moved the job, in that same call.
        let jobEvents = all.flatMap(\.jobEvents)
        XCTAssertEqual(jobEvents.count, 1, "\(jobEvents)")
        XCTAssertEqual(jobEvents.first?.jobId, job.id)
        XCTAssertEqual(jobEvents.first?.fromState, .accepted)
        XCTAssertEqual(jobEvents.first?.toState, .atPickup)
        XCTAssertEqual(all[arrivedAt].jobEvents, jobEvents)
        XCTAssertEqual(all.flatMap(\.suggestions), [])
        XCTAssertEqual(try session.job(jobId: job.id).state, .atPickup)
        XCTAssertEqual(try session.history(jobId: job.id).last?.toState, .atPickup)

        let last = try XCTUnwrap(stopped.last).state
        XCTAssertEqual(last.phase, .arrived)
        XCTAssertEqual(last.currentStop, 0)
        XCTAssertEqual(last.acceptedFixes, UInt64(trace.all.count))
        XCTAssertEqual(last.ignoredStale, 0)
        XCTAssertEqual(last.ignoredInaccurate, 0)
        XCTAssertEqual(last.lastFixAt, trace.stopped.last?.at)
        XCTAssertEqual(try session.navigation()?.state, last)
    }

    func testSuggestModeOffersTheArrivalAndTheJobStaysAccepted() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let job = try await acceptSampleJob(session)
        let trace = ArrivalTrace(to: job.pickup.store.location, from: now())
        var options = defaultNavigationOptions()
        options.arrivalMode = .suggest
        _ = try session.startNavigation(origin: trace.origin, options: options)

        let all = try trace.all.map { try session.pushFix(fix: $0) }

        XCTAssertEqual(arrivals(all), [.arrived(stopIndex: 0, jobId: job.id, kind: .pickup)])
        let suggestions = all.flatMap(\.suggestions)
        XCTAssertEqual(suggestions, [JobAction(jobId: job.id, transition: .arriveAtPickup)])
        let arrivedAt = try XCTUnwrap(all.firstIndex { !$0.events.isEmpty })
        XCTAssertEqual(all[arrivedAt].suggestions, suggestions)
        XCTAssertEqual(all.flatMap(\.jobEvents), [])
        XCTAssertEqual(try session.job(jobId: job.id).state, .accepted)
        XCTAssertEqual(all.last?.state.acceptedFixes, UInt64(trace.all.count))

        // The driver confirms: the suggestion is an ordinary action.
        let suggestion = try XCTUnwrap(suggestions.first)
        let confirmed = try await session.apply(jobId: suggestion.jobId, transition: suggestion.transition)
        XCTAssertEqual(confirmed.state, .atPickup)
    }

    func testFixWithNaNLatitudeIsInvalidInputAndChangesNothing() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let job = try await acceptSampleJob(session)
        let trace = ArrivalTrace(to: job.pickup.store.location, from: now())
        _ = try session.startNavigation(origin: trace.origin, options: defaultNavigationOptions())
        for fix in trace.driving.prefix(5) { _ = try session.pushFix(fix: fix) }
        let before = try XCTUnwrap(try session.navigation())
        XCTAssertEqual(before.state.acceptedFixes, 5)

        var bad = trace.driving[5]
        bad.latitude = .nan
        let error = doorstepErrorSync { try session.pushFix(fix: bad) }
        guard case let .InvalidInput(field, _)? = error else {
            return XCTFail("expected InvalidInput, got \(String(describing: error))")
        }
        XCTAssertEqual(field, "fix.latitude")

        XCTAssertEqual(try session.navigation(), before)
        // The same fix, well formed, is still new to the navigation.
        let next = try session.pushFix(fix: trace.driving[5])
        XCTAssertEqual(next.state.acceptedFixes, 6)
        XCTAssertEqual(next.state.ignoredStale, 0)
    }

    func testNavigationSurvivesClosingAndReopeningTheSession() async throws {
        var session: DriverSession? = try DriverSession.open(at: databaseURL())
        let job = try await acceptSampleJob(session!)
        let trace = ArrivalTrace(to: job.pickup.store.location, from: now())
        _ = try session!.startNavigation(origin: trace.origin, options: defaultNavigationOptions())
        let beforeClose = try XCTUnwrap(try trace.driving.prefix(20).map { try session!.pushFix(fix: $0) }.last)
        XCTAssertEqual(beforeClose.state.acceptedFixes, 20)

        // Release the session (its Rust side is freed on deinit), open again.
        session = nil
        session = try DriverSession.open(at: databaseURL())
        let restored = try XCTUnwrap(try session!.navigation(), "navigation is restored after a restart")
        XCTAssertEqual(restored.state, beforeClose.state)
        XCTAssertEqual(restored.stops, beforeClose.stops)
        XCTAssertEqual(restored.state.acceptedFixes, 20)
        XCTAssertEqual(restored.state.lastFixAt, trace.driving[19].at)
        XCTAssertEqual(restored.events, [])

        // A fix not newer than the last one before the restart is stale.
        let stale = try session!.pushFix(fix: trace.driving[19])
        XCTAssertEqual(stale.state.ignoredStale, 1)
        XCTAssertEqual(stale.state.acceptedFixes, 20)

        // The rest of the drive picks up where it left off and arrives.
        let rest = try (trace.driving.dropFirst(20) + trace.stopped).map { try session!.pushFix(fix: $0) }
        XCTAssertEqual(arrivals(rest), [.arrived(stopIndex: 0, jobId: job.id, kind: .pickup)])
        XCTAssertEqual(rest.last?.state.acceptedFixes, UInt64(trace.all.count))
        XCTAssertEqual(try session!.job(jobId: job.id).state, .atPickup)

        session = nil
        session = try DriverSession.open(at: databaseURL())
        let again = try XCTUnwrap(try session!.navigation())
        XCTAssertEqual(again.state.acceptedFixes, UInt64(trace.all.count))
        XCTAssertEqual(again.state.phase, .arrived)
        try session!.stopNavigation()
        XCTAssertNil(try session!.navigation())

        session = nil
        session = try DriverSession.open(at: databaseURL())
        XCTAssertNil(try session!.navigation(), "a stopped navigation stays stopped")
    }

    func testCompletionIsAllowedAtTheDropoffAndNeedsAnOverrideAKilometreAway() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let job = try await acceptSampleJob(session)
        let dropoff = job.dropoff.location
        let at = now()
        func fix(northM: Double) -> Fix {
            Fix(latitude: dropoff.latitude + northM / metresPerDegreeLatitude, longitude: dropoff.longitude,
                horizontalAccuracyM: 5, speedMps: 0, courseDeg: nil, at: at)
        }

        XCTAssertEqual(try session.completionCheck(jobId: job.id, fix: fix(northM: 0)), .withinGeofence)
        XCTAssertEqual(try session.completionCheck(jobId: job.id, fix: fix(northM: 30)), .withinGeofence)

        guard case let .warn(warnM) = try session.completionCheck(jobId: job.id, fix: fix(northM: 200)) else {
            return XCTFail("expected a warning 200 m away")
        }
        XCTAssertTrue((100...300).contains(warnM), "\(warnM)")

        guard case let .needsOverride(farM) = try session.completionCheck(jobId: job.id, fix: fix(northM: 1_000)) else {
            return XCTFail("expected an override to be needed 1 km away")
        }
        // 1 km less the 40 m fence and the 5 m accuracy credit.
        XCTAssertTrue((900...1_000).contains(farM), "\(farM)")

        var bad = fix(northM: 0)
        bad.latitude = .nan
        let error = doorstepErrorSync { try session.completionCheck(jobId: job.id, fix: bad) }
        guard case .InvalidInput? = error else {
            return XCTFail("expected InvalidInput, got \(String(describing: error))")
        }
    }

    func testNavigationNeedsAnAcceptedJob() async throws {
        let (session, _) = try await sessionWithSample()
        let error = doorstepErrorSync {
            try session.startNavigation(origin: GeoPoint(latitude: 37.8, longitude: -122.26),
                                        options: defaultNavigationOptions())
        }
        guard case let .InvalidInput(field, _)? = error else {
            return XCTFail("expected InvalidInput, got \(String(describing: error))")
        }
        XCTAssertEqual(field, "jobs")
        XCTAssertNil(try session.navigation())
        let fix = Fix(latitude: 37.8, longitude: -122.26, horizontalAccuracyM: 5, speedMps: 0, courseDeg: nil, at: now())
        guard case .InvalidInput? = doorstepErrorSync({ try session.pushFix(fix: fix) }) else {
            return XCTFail("pushing a fix without navigation is invalid input")
        }
    }
}
