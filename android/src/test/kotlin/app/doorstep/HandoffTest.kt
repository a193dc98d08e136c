package app.doorstep

import app.doorstep.core.DiscrepancyKind
import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.HandoffDirection
import app.doorstep.core.JobState
import app.doorstep.core.StoreSession
import app.doorstep.core.Transition
import app.doorstep.core.handoffCodePng
import app.doorstep.core.handoffCodeSvg
import app.doorstep.core.softwareDeviceSigner
import java.io.File
import java.nio.file.Files
import java.util.UUID
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

private val handoffSample: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

private val store = UUID.fromString("775bf8b3-3b4a-5397-9d8f-453d5c4ef140")
private val hpm2401 = UUID.fromString("f83adc5d-00a4-5760-b151-14243daf701b")

/**
 * A QR handoff between a driver's session and a store's session, each with
 * its own key and database; the code texts pass between them as the two
 * cameras would carry them.
 */
class HandoffTest {
    private lateinit var dir: File

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-handoff").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    private fun driver(): DriverSession {
        val driver = DriverSession.open(File(dir, "driver.db").path)
        runBlocking { driver.importDocument(handoffSample) }
        driver.setDeviceSigner(softwareDeviceSigner(null))
        driver.applyBlocking(hpm2401, Transition.Accept)
        driver.applyBlocking(hpm2401, Transition.ArriveAtPickup)
        return driver
    }

    private fun store(): StoreSession {
        val session = StoreSession.open(File(dir, "store.db").path, store, softwareDeviceSigner(null))
        assertEquals(4u, session.importDocument(handoffSample))
        return session
    }

    @Test
    fun `a QR handoff moves the job and leaves one receipt on both devices`() = runBlocking<Unit> {
        driver().use { driver ->
            store().use { staff ->
                assertEquals(4, staff.ordersAwaitingPickup().size)
                val handoff = staff.startHandoff(HandoffDirection.PICKUP, driver.handoffCheckInCode(), listOf(hpm2401))
                val id = handoff.handoffId
                assertEquals(listOf("DS100000", "DS100001"), handoff.jobs[0].expected)

                staff.scan(id, "DS100000")
                assertFailsWith<DoorstepException.DuplicateScan> { staff.scan(id, "DS100000") }
                assertFailsWith<DoorstepException.UnknownBarcode> { staff.scan(id, "NOT-A-PACKAGE") }
                val otherJob = assertFailsWith<DoorstepException.BarcodeOfOtherJob> { staff.scan(id, "DS100300") }
                assertEquals("HPM-2404", otherJob.jobReference)
                staff.scan(id, "DS100001")
                staff.recordDiscrepancy(id, DiscrepancyKind.DAMAGED, "DS100001", "corner crushed")

                val offer = staff.offerCode(id)
                assertTrue(handoffCodeSvg(offer, 4u).contains("<svg"))
                val png = handoffCodePng(offer, 4u)
                assertEquals(listOf(0x89, 'P'.code, 'N'.code, 'G'.code), png.take(4).map { it.toInt() and 0xff })

                val tampered = offer.substring(0, 40) + (if (offer[40] == 'A') 'B' else 'A') + offer.substring(41)
                assertFailsWith<DoorstepException> { driver.acceptHandoffOffer(tampered) }
                assertEquals(JobState.AT_PICKUP, driver.job(hpm2401).state, "a refused code changes nothing")

                val accepted = driver.acceptHandoffOffer(offer)
                assertEquals(JobState.PICKED_UP, accepted.jobs.single().state)
                assertEquals(JobState.PICKED_UP, driver.job(hpm2401).state)
                assertFailsWith<DoorstepException.HandoffReplayed> { driver.acceptHandoffOffer(offer) }

                val receiptHash = staff.completeHandoff(accepted.acceptanceCode)
                assertEquals(accepted.receiptHash, receiptHash)
                val custody = driver.handoffCustody(hpm2401).single()
                assertEquals(listOf("DS100000", "DS100001"), custody.confirmed)
                assertEquals(DiscrepancyKind.DAMAGED, custody.discrepancies.single().kind)
                assertEquals(custody, staff.custody(hpm2401).single())
                assertEquals(1, staff.receiptsToSend().size)
                assertEquals(3, staff.ordersAwaitingPickup().size)
            }
        }
    }

    @Test
    fun `a partial handoff needs a reason and an offer for another device is refused`() {
        driver().use { driver ->
            store().use { staff ->
                val id = staff.startHandoff(HandoffDirection.PICKUP, driver.handoffCheckInCode(), listOf(hpm2401)).handoffId
                val stray = staff.startHandoff(HandoffDirection.PICKUP, driver.handoffCheckInCode(), listOf(hpm2401)).handoffId
                assertEquals(setOf(id, stray), staff.handoffsInProgress().map { it.handoffId }.toSet())
                staff.cancelHandoff(stray)
                assertEquals(listOf(id), staff.handoffsInProgress().map { it.handoffId })
                assertFailsWith<DoorstepException.NotFound> { staff.cancelHandoff(stray) }
                staff.scan(id, "DS100000")
                val refused = assertFailsWith<DoorstepException.RequirementsNotMet> { staff.offerCodeBlocking(id) }
                assertTrue(refused.missing.single().contains("HPM-2401"))
                staff.setPartialReason(id, hpm2401, "second box not packed yet")
                val offer = staff.offerCodeBlocking(id)
                assertFailsWith<DoorstepException.InvalidInput> { staff.cancelHandoff(id) }

                DriverSession.open(File(dir, "other.db").path).use { other ->
                    runBlocking { other.importDocument(handoffSample) }
                    other.setDeviceSigner(softwareDeviceSigner(null))
                    assertFailsWith<DoorstepException.HandoffWrongDevice> { other.acceptHandoffOfferBlocking(offer) }
                }

                val accepted = driver.acceptHandoffOfferBlocking(offer)
                staff.completeHandoffBlocking(accepted.acceptanceCode)
                val custody = driver.handoffCustody(hpm2401).single()
                assertEquals("second box not packed yet", custody.partialReason)
                assertEquals("DS100001", custody.discrepancies.single { it.kind == DiscrepancyKind.MISSING }.barcode)
            }
        }
    }
}
