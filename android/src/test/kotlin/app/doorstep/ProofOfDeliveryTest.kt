package app.doorstep

import app.doorstep.core.DeliveryMethod
import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.FailureNextStep
import app.doorstep.core.FailureReason
import app.doorstep.core.Fix
import app.doorstep.core.JobState
import app.doorstep.core.MutationBody
import app.doorstep.core.Stroke
import app.doorstep.core.StrokePoint
import app.doorstep.core.Transition
import app.doorstep.core.softwareDeviceSigner
import app.doorstep.core.verifySealedPodRecord
import java.io.File
import java.nio.file.Files
import java.security.MessageDigest
import java.time.Instant
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

private val podSampleDocument: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

/** A JPEG as a camera hands it over: the SOI marker, then the picture. */
private val photo: ByteArray = byteArrayOf(0xFF.toByte(), 0xD8.toByte(), 0xFF.toByte(), 0xE0.toByte()) +
    "a photo of the front door".toByteArray()

private fun sha256Hex(bytes: ByteArray): String =
    MessageDigest.getInstance("SHA-256").digest(bytes).joinToString("") { "%02x".format(it) }

class ProofOfDeliveryTest {
    private lateinit var dir: File
    private val dbPath get() = File(dir, "driver.db").path

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-kotlin-pod").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    /** Imports the sample day and brings job [reference] to its drop-off. */
    private fun atDropoff(session: DriverSession, reference: String) = runBlocking {
        session.importDocument(podSampleDocument)
        val id = session.jobs().single { it.reference == reference }.id
        for (t in listOf(Transition.Accept, Transition.ArriveAtPickup, Transition.ConfirmPickup, Transition.ArriveAtDropoff)) {
            session.apply(id, t)
        }
        session.job(id)
    }

    private fun fixAt(latitude: Double, longitude: Double) =
        Fix(latitude = latitude, longitude = longitude, horizontalAccuracyM = 5.0, speedMps = null, courseDeg = null, at = Instant.now())

    @Test
    fun `a full proof of delivery with photo, signature, scan, PIN and age check is sealed and verifiable`() = runBlocking<Unit> {
        DriverSession.open(dbPath).use { session ->
            val signer = softwareDeviceSigner(null)
            session.setDeviceSigner(signer)
            val job = atDropoff(session, "HPM-2403")
            session.startPod(job.id)

            session.setMethod(job.id, DeliveryMethod.HANDED_TO_RECIPIENT)
            session.addPhotoBytes(job.id, photo)
            val rendering = session.addSignature(
                job.id, 240f, 90f,
                listOf(
                    Stroke(listOf(StrokePoint(12f, 70f), StrokePoint(90f, 20f), StrokePoint(180f, 75f))),
                    Stroke(listOf(StrokePoint(200f, 40f))),
                ),
            )
            assertTrue(rendering.svg.startsWith("<svg"), rendering.svg)
            assertContentEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte()), rendering.png.copyOfRange(0, 4))
            session.setRecipient(job.id, "Dana Whitfield")
            val duplicate = assertFailsWith<DoorstepException.UnknownBarcode> { session.scanPackage(job.id, "NOT-ON-IT") }
            assertEquals("NOT-ON-IT", duplicate.barcode)
            session.scanPackage(job.id, "DS100200")
            val wrong = assertFailsWith<DoorstepException.WrongPin> { session.enterPin(job.id, "0000") }
            assertEquals(2u, wrong.attemptsLeft)
            session.enterPin(job.id, "4711")
            session.recordAgeCheck(job.id, true, "1990-04-02")
            val draft = session.attachFix(job.id, fixAt(job.dropoff.location.latitude, job.dropoff.location.longitude), 5_000uL)
            assertEquals(1, draft.photos.size)
            assertTrue(draft.pin.verified)
            assertEquals(emptyList(), session.podUnmet(job.id))

            val sealed = session.finalizePod(job.id, null)
            assertEquals(JobState.DELIVERED, sealed.job.state)
            assertEquals(2u, sealed.uploads)
            val media = mapOf(sha256Hex(photo) to photo, sha256Hex(rendering.png) to rendering.png)
            verifySealedPodRecord(sealed.record, signer.publicKey(), media)
            session.verifyPodRecord(sealed.record)

            val tampered = sealed.record.copyOf().also { it[it.size / 2] = (it[it.size / 2] + 1).toByte() }
            assertFailsWith<DoorstepException.InvalidInput> { verifySealedPodRecord(tampered, signer.publicKey(), media) }
            val otherPhoto = photo.copyOf().also { it[10] = 'X'.code.toByte() }
            assertFailsWith<DoorstepException.InvalidInput> {
                verifySealedPodRecord(sealed.record, signer.publicKey(), media + (sha256Hex(photo) to otherPhoto))
            }

            val queued = session.outbox()
            assertEquals(2, queued.count { it.body is MutationBody.Upload })
            val deliver = queued.single { (it.body as? MutationBody.Action)?.transition == Transition.Deliver }
            assertNotNull((deliver.body as MutationBody.Action).record)
        }
    }

    @Test
    fun `finalize is refused naming what is missing, and the draft survives a restart`() {
        val jobId = DriverSession.open(dbPath).use { session ->
            session.setDeviceSigner(softwareDeviceSigner(null))
            val job = atDropoff(session, "HPM-2401")
            session.startPod(job.id)
            session.setMethod(job.id, DeliveryMethod.LEFT_AT_DOOR)
            session.scanPackage(job.id, "DS100000")
            val refused = assertFailsWith<DoorstepException.RequirementsNotMet> { session.finalizePodBlocking(job.id, "no GPS") }
            assertEquals(listOf("photos", "package_scans"), refused.missing)
            assertEquals(JobState.AT_DROPOFF, session.job(job.id).state)
            assertFailsWith<DoorstepException.BarcodeOfOtherJob> { session.scanPackage(job.id, "DS100100") }
            assertFailsWith<DoorstepException.DuplicateScan> { session.scanPackage(job.id, "DS100000") }
            assertFailsWith<DoorstepException.MediaUnusable> { session.addPhotoBytesBlocking(job.id, "not an image".toByteArray()) }
            job.id
        }
        DriverSession.open(dbPath).use { session ->
            session.setDeviceSigner(softwareDeviceSigner(null))
            val draft = session.podDraft(jobId)
            assertEquals(listOf("DS100000"), draft.scans.map { it.barcode })
            assertEquals(DeliveryMethod.LEFT_AT_DOOR, draft.method)
            assertEquals(listOf("photos", "package_scans"), session.podUnmet(jobId))

            val far = session.job(jobId).dropoff.location
            session.attachFix(jobId, fixAt(far.latitude + 0.02, far.longitude), 1uL)
            session.addPhotoBytesBlocking(jobId, photo)
            val failed = assertFailsWith<DoorstepException.TooFarFromDropoff> {
                session.failDeliveryBlocking(jobId, FailureReason.RECIPIENT_UNAVAILABLE, FailureNextStep.REATTEMPT, null)
            }
            assertTrue(failed.distanceM > 1_000.0)
            val sealed = session.failDeliveryBlocking(jobId, FailureReason.RECIPIENT_UNAVAILABLE, FailureNextStep.REATTEMPT, "GPS drifts in this street")
            assertEquals(JobState.PICKED_UP, sealed.job.state)
            assertEquals(1, session.podRecords(jobId).size)
        }
    }
}
