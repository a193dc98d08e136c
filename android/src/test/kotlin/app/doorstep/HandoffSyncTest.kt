package app.doorstep

import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.HandoffDirection
import app.doorstep.core.ReceiptSendStatus
import app.doorstep.core.StoreSession
import app.doorstep.core.TokenProvider
import app.doorstep.core.Transition
import app.doorstep.core.defaultSyncConfig
import app.doorstep.core.softwareDeviceSigner
import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.util.UUID
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

private val syncSample: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

private val syncStore = UUID.fromString("775bf8b3-3b4a-5397-9d8f-453d5c4ef140")
private val syncJob = UUID.fromString("f83adc5d-00a4-5760-b151-14243daf701b") // HPM-2401: DS100000, DS100001

/** A store's token from the reference server's admin API. */
class StoreTokens(storeId: UUID) : TokenProvider {
    private val token: String = Dispatch.call("POST", "/admin/stores/$storeId/tokens").let {
        check(it.status == 201) { "issue store token: ${it.status} ${it.body}" }
        it.json().obj()["token"] as String
    }

    override fun accessToken(): String = token

    override fun refreshToken(): String = token
}

/** The store staff device sending its handoff receipt to dispatch through the Kotlin bindings. */
class HandoffSyncTest {
    private lateinit var dir: File

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-handoff-sync").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    private fun config(baseUrl: String) =
        defaultSyncConfig(baseUrl).copy(
            automatic = false,
            connectTimeout = Duration.ofSeconds(2),
            requestTimeout = Duration.ofSeconds(5),
        )

    private fun storeReceiptHashes(): List<String> {
        val answer = Dispatch.call("GET", "/admin/stores/$syncStore/receipts")
        check(answer.status == 200) { "store receipts: ${answer.status} ${answer.body}" }
        return answer.json().obj()["receipts"].list().map { it.obj()["receipt_hash"] as String }
    }

    @Test
    fun `the store's receipt stays queued offline and reaches dispatch once`() = runBlocking {
        DriverSession.open(File(dir, "driver.db").path).use { driver ->
            driver.importDocument(syncSample)
            driver.setDeviceSigner(softwareDeviceSigner(null))
            driver.applyBlocking(syncJob, Transition.Accept)
            StoreSession.open(File(dir, "store.db").path, syncStore, softwareDeviceSigner(null)).use { staff ->
                staff.importDocument(syncSample)
                val id = staff.startHandoff(HandoffDirection.PICKUP, driver.handoffCheckInCode(), listOf(syncJob)).handoffId
                staff.scan(id, "DS100000")
                staff.scan(id, "DS100001")
                val accepted = driver.acceptHandoffOffer(staff.offerCode(id))
                val receiptHash = staff.completeHandoff(accepted.acceptanceCode)
                val tokens = StoreTokens(syncStore)

                assertFailsWith<DoorstepException.Network> { staff.syncReceipts(config("http://127.0.0.1:1"), tokens) }
                val queued = staff.pendingReceipts().single()
                assertEquals(receiptHash, queued.receiptHash)
                assertEquals(ReceiptSendStatus.QUEUED, queued.status)
                assertNotNull(queued.lastError)
                assertTrue(receiptHash !in storeReceiptHashes())

                val report = staff.syncReceipts(config(Dispatch.baseUrl), tokens)
                assertEquals(1u, report.sent)
                assertEquals(0u, report.pending)
                assertTrue(staff.pendingReceipts().isEmpty())
                assertEquals(1, storeReceiptHashes().count { it == receiptHash })
                assertEquals(0u, staff.syncReceipts(config(Dispatch.baseUrl), tokens).sent)
            }
        }
    }
}
