package app.doorstep

import app.doorstep.core.BleLink
import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.GrantIssuer
import app.doorstep.core.ReferenceLock
import app.doorstep.core.softwareDeviceSigner
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.util.ArrayDeque
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

private const val BUILDING = "bldg-jackson-1180"

/**
 * A GATT link written in Kotlin, as the Android shell's would be, that
 * forwards each ATT payload to the reference lock exported by the core.
 */
private class ForwardingLink(private val lock: ReferenceLock, private val mtu: UShort) : BleLink {
    private val notifications = ArrayDeque<ByteArray>()
    var writes = 0
    var received = 0

    override fun connect(doorId: UInt, timeoutMs: UInt): UShort {
        if (doorId != lock.doorTag()) throw DoorstepException.LockOutOfRange(doorId.toString())
        notifications.addAll(lock.gattSubscribe(mtu))
        return mtu
    }

    override fun write(payload: ByteArray) {
        writes += 1
        notifications.addAll(lock.gattWrite(payload))
    }

    override fun receive(timeoutMs: UInt): ByteArray {
        received += 1
        return notifications.pollFirst() ?: throw DoorstepException.LinkFailed("the lock sent nothing")
    }

    override fun disconnect() {
        notifications.clear()
        lock.gattDisconnect()
    }
}

class DoorUnlockTest {
    private lateinit var dir: File

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-kotlin-door").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    /** A session holding the sample day, a device key and a grant for HPM-2401's lobby. */
    private fun sessionWithGrant(issuer: GrantIssuer): DriverSession = runBlocking {
        val session = DriverSession.open(File(dir, "driver.db").path)
        session.importDocument(File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT")!!).readText())
        val signer = softwareDeviceSigner(null)
        session.setDeviceSigner(signer)
        val job = session.jobs().first { it.reference == "HPM-2401" }.id
        val grant = issuer.issue(
            signer.publicKey(), job, BUILDING, listOf("lobby-main"),
            Instant.now().minusSeconds(1800), 120u.toUShort(), 0u.toUShort(), 0u.toUByte(),
        )
        val cached = session.addDoorGrant(job, grant)
        assertEquals(listOf(ReferenceLock(issuer.publicKey(), 1u, BUILDING, "lobby-main", ByteArray(32), null).doorTag()), cached.doorTags)
        session
    }

    @Test
    fun `a Kotlin link carries the exchange to the lock and the door opens`() = runBlocking {
        val issuer = GrantIssuer(null)
        sessionWithGrant(issuer).use { session ->
            val lock = ReferenceLock(issuer.publicKey(), 7u, BUILDING, "lobby-main", ByteArray(32) { 1 }, null)
            val link = ForwardingLink(lock, 185u.toUShort())
            val opened = session.unlockDoor(BUILDING, "lobby-main", link)
            assertEquals(7u, opened.lockId)
            assertEquals(3u, opened.messages, "challenge, response and result at MTU 185")
            assertEquals(1, link.writes)
            assertEquals(1u, lock.timesOpened())
            assertEquals("opened", session.unlockHistory().single().outcome)
            assertTrue(lock.auditLog().single().authentic)

            // At MTU 23 the same exchange takes many fragments and still opens.
            val small = ForwardingLink(lock, 23u.toUShort())
            val again = session.unlockDoor(BUILDING, "lobby-main", small)
            assertTrue(small.writes >= 9, "${small.writes} writes")
            assertEquals(23.toUShort(), again.mtu)
            assertEquals(2u, lock.timesOpened())
        }
    }

    @Test
    fun `a lock that does not trust the issuer denies, and the denial is recorded`() = runBlocking {
        val issuer = GrantIssuer(null)
        sessionWithGrant(issuer).use { session ->
            val lock = ReferenceLock(GrantIssuer(null).publicKey(), 8u, BUILDING, "lobby-main", ByteArray(32) { 2 }, null)
            val denied = assertFailsWith<DoorstepException.Denied> {
                session.unlockDoor(BUILDING, "lobby-main", ForwardingLink(lock, 185u.toUShort()))
            }
            assertEquals("unknown_issuer", denied.reason)
            assertEquals(0u, lock.timesOpened())
            assertEquals("unknown_issuer", lock.auditLog().single().outcome)
            assertEquals("unknown_issuer", session.unlockHistory().single().outcome)
        }
    }

    @Test
    fun `a lock out of range and a door without a grant give errors the driver can act on`() = runBlocking {
        val issuer = GrantIssuer(null)
        sessionWithGrant(issuer).use { session ->
            val elsewhere = ReferenceLock(issuer.publicKey(), 9u, BUILDING, "garage", ByteArray(32), null)
            assertFailsWith<DoorstepException.LockOutOfRange> {
                session.unlockDoor(BUILDING, "lobby-main", ForwardingLink(elsewhere, 185u.toUShort()))
            }
            val noGrant = assertFailsWith<DoorstepException.NoGrant> {
                session.unlockDoor(BUILDING, "garage", elsewhere.inMemoryLink(185u.toUShort()))
            }
            assertTrue(noGrant.reason.contains("sync"), noGrant.reason)
            assertEquals(0, elsewhere.auditLog().size)
        }
    }
}
