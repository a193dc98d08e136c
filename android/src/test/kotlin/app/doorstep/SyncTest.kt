package app.doorstep

import app.doorstep.core.ConflictKind
import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.JobState
import app.doorstep.core.MutationBody
import app.doorstep.core.MutationStatus
import app.doorstep.core.NextStep
import app.doorstep.core.SyncConfig
import app.doorstep.core.SyncStatus
import app.doorstep.core.TokenProvider
import app.doorstep.core.Transition
import app.doorstep.core.defaultSyncConfig
import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.util.UUID
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

/**
 * The driver's token, as a shell keeps it: the current one, and a refresh
 * that asks dispatch for a new one (here, the reference server's admin API).
 * Called by the core on its own background threads.
 */
class ServerTokens(private val driverId: String, initial: String) : TokenProvider {
    @Volatile var current: String = initial
    val refreshes = AtomicInteger()

    override fun accessToken(): String = current

    override fun refreshToken(): String {
        refreshes.incrementAndGet()
        current = Dispatch.issueToken(driverId)
        return current
    }
}

/** Sync with the reference dispatch server, through the generated bindings and the Kotlin shell. */
class SyncTest {
    private lateinit var dir: File
    private lateinit var driverId: String
    private lateinit var token: String
    /** The day's jobs as dispatch created them, in document order (HPM-2401 first). */
    private lateinit var jobIds: List<UUID>
    private val sessions = ArrayList<DriverSession>()

    @BeforeTest
    fun setUp() {
        dir = Files.createTempDirectory("doorstep-kotlin-sync").toFile()
        driverId = freshDriverId()
        token = Dispatch.issueToken(driverId)
        jobIds = Dispatch.assignJobs(driverId, freshSampleDocument())
        assertEquals(10, jobIds.size)
    }

    @AfterTest
    fun tearDown() {
        sessions.forEach { it.stopSync(); it.close() }
        dir.deleteRecursively()
    }

    /** Test settings: short backoff and timeouts; stepped with syncNow unless [automatic]. */
    private fun config(automatic: Boolean = false): SyncConfig =
        defaultSyncConfig(Dispatch.baseUrl).copy(
            automatic = automatic,
            backoffBase = Duration.ofMillis(20),
            backoffMax = Duration.ofSeconds(1),
            requestTimeout = Duration.ofSeconds(5),
        )

    private fun session(
        tokens: TokenProvider = ServerTokens(driverId, token),
        automatic: Boolean = false,
    ): DriverSession {
        val session = DriverSession.open(File(dir, "driver-${sessions.size}.db").path)
        sessions.add(session)
        session.startSync(config(automatic), tokens)
        return session
    }

    private fun serverState(job: UUID) = Dispatch.job(job)["state"]

    @Test
    fun `a first sync brings the day's jobs`() = runBlocking {
        val session = session()
        assertEquals(emptyList(), session.jobs())

        val report = session.syncNow()
        assertEquals(10u, report.jobsReceived)
        assertEquals(0u, report.sent)
        assertEquals(0u, report.pending)
        assertEquals(jobIds.toSet(), session.jobs().map { it.id }.toSet())
        assertTrue(session.jobs().all { it.state == JobState.ASSIGNED })
        val status = session.syncStatus()
        assertNotNull(status.lastSuccessAt)
        assertNull(status.lastError)

        // Nothing changed on the server: the next pull brings nothing.
        assertEquals(0u, session.syncNow().jobsReceived)
    }

    @Test
    fun `an action reaches dispatch exactly once and syncNow reports it acknowledged`() = runBlocking {
        val session = session()
        session.syncNow()
        val job = jobIds[0]
        session.apply(job, Transition.Accept)
        session.apply(job, Transition.ArriveAtPickup)
        session.apply(job, Transition.ConfirmPickup)
        val queued = session.outbox()
        assertEquals(3, queued.size)
        assertTrue(queued.all { it.jobId == job && it.status == MutationStatus.PENDING })
        assertEquals("assigned", serverState(job), "nothing is sent before a sync")

        val report = session.syncNow()
        assertEquals(3u, report.sent)
        assertEquals(3u, report.acknowledged)
        assertEquals(0u, report.conflicts)
        assertEquals(0u, report.rejected)
        assertEquals(0u, report.pending)
        assertEquals(0u, report.wedged)
        assertEquals(emptyList(), session.outbox())

        assertEquals("picked_up", serverState(job))
        val processed = Dispatch.processed(session.clientId())
        assertEquals(queued.map { it.mutationId.toLong() }, processed.map { it["mutation_id"] })
        assertEquals(listOf("accept", "arrive_at_pickup", "confirm_pickup"), processed.map { it["action"] })
        assertEquals(List(3) { "applied" }, processed.map { it["outcome"] })
        assertEquals(List(3) { job.toString() }, processed.map { it["job_id"] })

        // Another round sends nothing again.
        val again = session.syncNow()
        assertEquals(0u, again.sent)
        assertEquals(3, Dispatch.processed(session.clientId()).size)
    }

    @Test
    fun `offline actions stay queued and go by themselves when connectivity returns`() = runBlocking {
        val session = session(automatic = true)
        val connectivity = MutableStateFlow(true)
        val following = session.followConnectivity(this, connectivity)
        try {
            // The background loop brings the day without being asked.
            eventually("the first automatic sync") { session.jobs().size == 10 }
            val job = jobIds[1]

            connectivity.value = false
            eventually("the core hears it is offline") { !session.syncStatus().online }
            val accepted = session.apply(job, Transition.Accept)
            assertEquals(JobState.ACCEPTED, accepted.state, "the driver sees the action at once")
            assertFailsWith<DoorstepException.Offline> { session.syncNow() }
            val queued = session.outbox()
            assertEquals(1, queued.size)
            assertEquals(MutationStatus.PENDING, queued[0].status)
            assertEquals(MutationBody.Action(Transition.Accept, null), queued[0].body)
            assertEquals(1u, session.syncStatus().pending)
            assertEquals("assigned", serverState(job))

            // Back online: no syncNow, the loop sends it.
            connectivity.value = true
            val drained = withTimeout(15_000) {
                session.syncStatusUpdates().first { it.online && it.pending == 0u && !it.syncing }
            }
            assertNull(drained.lastError)
            assertEquals(emptyList(), session.outbox())
            assertEquals("accepted", serverState(job))
            assertEquals(listOf("accept"), Dispatch.processed(session.clientId()).map { it["action"] })
        } finally {
            following.cancel()
        }
    }

    @Test
    fun `the sync status Flow reports the queue and the last success`() = runBlocking {
        val session = session()
        session.syncNow()
        val firstSuccess = assertNotNull(session.syncStatus().lastSuccessAt)
        session.apply(jobIds[2], Transition.Accept)

        val seen = CopyOnWriteArrayList<SyncStatus>()
        val collector = launch { session.syncStatusUpdates().collect { seen.add(it) } }
        // The current status comes first; wait for it before changing anything.
        eventually("the current status") { seen.isNotEmpty() }
        assertEquals(1u, seen[0].pending)
        assertEquals(firstSuccess, seen[0].lastSuccessAt)

        val report = session.syncNow()
        assertEquals(1u, report.acknowledged)
        eventually("a status after the sync") {
            seen.any { it.pending == 0u && it.lastSuccessAt != null && it.lastSuccessAt!! > firstSuccess }
        }
        collector.cancel()
        val last = seen.last()
        assertEquals(0u, last.pending)
        assertEquals(0u, last.wedged)
        assertTrue(last.online)
        assertNull(last.lastError)
        assertEquals(session.syncStatus().lastSuccessAt, last.lastSuccessAt)
    }

    @Test
    fun `a revoked token is refreshed once by the Kotlin token provider`() = runBlocking {
        val tokens = ServerTokens(driverId, token)
        val session = session(tokens)
        session.syncNow()
        assertEquals(0, tokens.refreshes.get())

        session.apply(jobIds[3], Transition.Accept)
        Dispatch.revokeToken(token)
        // Both requests of the round (push, then pull) need the new token.
        val report = session.syncNow()
        assertEquals(1u, report.acknowledged)
        assertEquals(1, tokens.refreshes.get())
        assertTrue(tokens.current != token)
        assertEquals("accepted", serverState(jobIds[3]))

        // The fresh token keeps working.
        session.syncNow()
        assertEquals(1, tokens.refreshes.get())
    }

    @Test
    fun `a refresh that throws gives Unauthorized and the action waits`() = runBlocking {
        val refreshes = AtomicInteger()
        val tokens = object : TokenProvider {
            @Volatile var current = token
            override fun accessToken() = current
            override fun refreshToken(): String {
                refreshes.incrementAndGet()
                throw DoorstepException.Unauthorized("refresh token expired; the driver must sign in")
            }
        }
        val session = session(tokens)
        session.syncNow()
        session.apply(jobIds[4], Transition.Accept)
        Dispatch.revokeToken(token)

        val error = assertFailsWith<DoorstepException.Unauthorized> { session.syncNow() }
        assertTrue(error.reason.contains("refresh token expired"), error.reason)
        assertEquals(1, refreshes.get())
        val queued = session.outbox().single()
        assertEquals(MutationStatus.PENDING, queued.status, "an auth failure must not wedge the action")
        assertNotNull(session.syncStatus().lastError)
        assertEquals("assigned", serverState(jobIds[4]))

        // The driver signs in again: the action goes.
        tokens.current = Dispatch.issueToken(driverId)
        assertEquals(1u, session.syncNow().acknowledged)
        assertEquals("accepted", serverState(jobIds[4]))
        assertNull(session.syncStatus().lastError)
    }

    @Test
    fun `a refreshed token that dispatch refuses too gives Unauthorized`() = runBlocking {
        val stale = Dispatch.issueToken(driverId)
        Dispatch.revokeToken(stale)
        val refreshes = AtomicInteger()
        val tokens = object : TokenProvider {
            override fun accessToken() = stale
            override fun refreshToken(): String {
                refreshes.incrementAndGet()
                return stale
            }
        }
        val session = session(tokens)
        val error = assertFailsWith<DoorstepException.Unauthorized> { session.syncNow() }
        assertTrue(error.reason.startsWith("401"), error.reason)
        assertEquals(1, refreshes.get(), "one refresh per request, not a loop")
        assertEquals(emptyList(), session.jobs())
    }

    @Test
    fun `a job cancelled on the server after an offline pickup shows a conflict`() = runBlocking {
        val session = session()
        session.syncNow()
        val job = jobIds[5]
        session.apply(job, Transition.Accept)
        assertEquals(1u, session.syncNow().acknowledged)

        session.setOnline(false)
        session.apply(job, Transition.ArriveAtPickup)
        session.apply(job, Transition.ConfirmPickup)
        Dispatch.cancelJob(job)
        session.setOnline(true)
        val report = session.syncNow()
        assertEquals(2u, report.sent)
        assertEquals(2u, report.conflicts)
        assertEquals(0u, report.pending)

        val local = session.job(job)
        assertEquals(JobState.PICKED_UP, local.state, "the driver's facts stay")
        val conflict = local.conflict ?: fail("the job shows no conflict")
        assertEquals(ConflictKind.CANCELLED, conflict.kind)
        assertEquals(NextStep.RETURN_TO_STORE, conflict.nextStep)
        val server = Dispatch.job(job)
        assertEquals("cancelled", server["status"])
        assertEquals(2, server["conflicts"].list().size, "recorded on the server too")

        // The next step: the packages go back, and dispatch hears of it.
        session.apply(job, Transition.StartReturn)
        session.apply(job, Transition.CompleteReturn)
        session.syncNow()
        assertEquals(JobState.RETURNED, session.job(job).state)
        assertEquals(0u, session.syncStatus().pending)
        assertEquals(4, Dispatch.job(job)["conflicts"].list().size)
    }

    /** Polls [condition] (suspending, so other coroutines run) until it holds or 10 s pass. */
    private suspend fun eventually(what: String, condition: () -> Boolean) {
        val deadline = System.nanoTime() + 10_000_000_000
        while (!condition()) {
            if (System.nanoTime() > deadline) fail("timed out waiting for $what")
            delay(10)
        }
    }
}
