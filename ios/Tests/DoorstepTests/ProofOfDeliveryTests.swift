import Doorstep
import Foundation
import XCTest

/// Proof of delivery across the FFI: a full capture sealed and verified with
/// the device's public key, and a finalize refused naming what is missing.
final class ProofOfDeliveryTests: DoorstepTestCase {
    /// A JPEG as a camera hands it over: the SOI marker, then the picture.
    private let photo = Data([0xFF, 0xD8, 0xFF, 0xE0]) + Data("a photo of the front door".utf8)

    /// Imports the sample day and brings job `reference` to its drop-off.
    private func atDropoff(_ session: DriverSession, _ reference: String) async throws -> DeliveryJob {
        _ = try await session.importDocument(json: Fixture.mallPickupRun())
        let id = try XCTUnwrap(try session.jobs().first { $0.reference == reference }).id
        for transition in [Transition.accept, .arriveAtPickup, .confirmPickup, .arriveAtDropoff] {
            _ = try await session.apply(jobId: id, transition: transition)
        }
        return try session.job(jobId: id)
    }

    private func fix(at point: GeoPoint) -> Fix {
        Fix(latitude: point.latitude, longitude: point.longitude, horizontalAccuracyM: 5, speedMps: nil, courseDeg: nil, at: Date())
    }

    func testAFullProofOfDeliveryIsSealedAndVerifiable() async throws {
        let session = try DriverSession.open(at: databaseURL())
        let signer = try softwareDeviceSigner(secret: nil)
        session.setDeviceSigner(signer: signer)
        let job = try await atDropoff(session, "HPM-2403")
        _ = try session.startPod(jobId: job.id)

        _ = try session.setMethod(jobId: job.id, method: .handedToRecipient)
        _ = try await session.addPhotoBytes(jobId: job.id, bytes: photo)
        let rendering = try session.addSignature(jobId: job.id, width: 240, height: 90, strokes: [
            Stroke(points: [StrokePoint(x: 12, y: 70), StrokePoint(x: 90, y: 20), StrokePoint(x: 180, y: 75)]),
            Stroke(points: [StrokePoint(x: 200, y: 40)]),
        ])
        XCTAssertTrue(rendering.svg.hasPrefix("<svg"))
        XCTAssertEqual(Array(rendering.png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        _ = try session.setRecipient(jobId: job.id, name: "Dana Whitfield")
        _ = try session.scanPackage(jobId: job.id, barcode: "DS100200")
        guard case .DuplicateScan? = doorstepErrorSync({ try session.scanPackage(jobId: job.id, barcode: "DS100200") }) else {
            return XCTFail("a second scan is a duplicate")
        }
        guard case let .WrongPin(left)? = doorstepErrorSync({ try session.enterPin(jobId: job.id, pin: "0000") }) else {
            return XCTFail("a wrong PIN is refused")
        }
        XCTAssertEqual(left, 2)
        _ = try session.enterPin(jobId: job.id, pin: "4711")
        _ = try session.recordAgeCheck(jobId: job.id, idChecked: true, dateOfBirth: "1990-04-02")
        let draft = try session.attachFix(jobId: job.id, fix: fix(at: job.dropoff.location), monotonicMs: 5_000)
        XCTAssertEqual(try session.podUnmet(jobId: job.id), [])

        let sealed = try await session.finalizePod(jobId: job.id, overrideReason: nil)
        XCTAssertEqual(sealed.job.state, .delivered)
        XCTAssertEqual(sealed.uploads, 2)
        let photoSha = try XCTUnwrap(draft.photos.first).sha256
        let pngSha = try XCTUnwrap(draft.signature).png.sha256
        let media = [photoSha: photo, pngSha: rendering.png]
        let publicKey = try signer.publicKey()
        try verifySealedPodRecord(record: sealed.record, publicKey: publicKey, media: media)
        try session.verifyPodRecord(record: sealed.record)

        var tampered = sealed.record
        tampered[tampered.count / 2] ^= 0x01
        guard case .InvalidInput? = doorstepErrorSync({ try verifySealedPodRecord(record: tampered, publicKey: publicKey, media: media) }) else {
            return XCTFail("a changed record byte is detected")
        }
        var otherPhoto = photo
        otherPhoto[10] ^= 0x20
        guard case .InvalidInput? = doorstepErrorSync({
            try verifySealedPodRecord(record: sealed.record, publicKey: publicKey, media: [photoSha: otherPhoto, pngSha: rendering.png])
        }) else {
            return XCTFail("a changed photo byte is detected")
        }
        XCTAssertEqual(try session.podRecords(jobId: job.id), [sealed.record])
    }

    func testFinalizeIsRefusedNamingWhatIsMissing() async throws {
        let session = try DriverSession.open(at: databaseURL())
        session.setDeviceSigner(signer: try softwareDeviceSigner(secret: nil))
        let job = try await atDropoff(session, "HPM-2401")
        _ = try session.startPod(jobId: job.id)
        _ = try session.setMethod(jobId: job.id, method: .leftAtDoor)
        _ = try session.scanPackage(jobId: job.id, barcode: "DS100000")
        guard case let .RequirementsNotMet(missing)? = doorstepErrorSync({ try session.finalizePodBlocking(jobId: job.id, overrideReason: "no GPS") }) else {
            return XCTFail("finalize must be refused")
        }
        XCTAssertEqual(missing, ["photos", "package_scans"])
        XCTAssertEqual(try session.job(jobId: job.id).state, .atDropoff)
        guard case let .BarcodeOfOtherJob(_, other)? = doorstepErrorSync({ try session.scanPackage(jobId: job.id, barcode: "DS100100") }) else {
            return XCTFail("another job's package is refused")
        }
        XCTAssertEqual(other, "HPM-2402")

        // The draft is still there after the session is reopened.
        let reopened = try DriverSession.open(at: databaseURL())
        reopened.setDeviceSigner(signer: try softwareDeviceSigner(secret: nil))
        XCTAssertEqual(try reopened.podDraft(jobId: job.id).scans.map(\.barcode), ["DS100000"])
        _ = try reopened.addPhotoBytesBlocking(jobId: job.id, bytes: photo)
        _ = try reopened.scanPackage(jobId: job.id, barcode: "DS100001")
        let sealed = try reopened.finalizePodBlocking(jobId: job.id, overrideReason: "GPS lost between the towers")
        XCTAssertEqual(sealed.job.state, .delivered)
    }
}
