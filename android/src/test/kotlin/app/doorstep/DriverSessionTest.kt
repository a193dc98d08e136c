package app.doorstep

import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.JobEvent
import app.doorstep.core.JobEventKind
import app.doorstep.core.JobObserver
import app.doorstep.core.JobState
import app.doorstep.core.Transition
import app.doorstep.core.coreVersion
import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield

/** The sample day the demo uses; the test runner says where it is. */
private val sampleDocument: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

class DriverSessionTest {
    private lateinit var dir: File
    private val dbPath get() = File(dir, "driver.db").path

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-kotlin").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    @Test
    fun `a fresh session has no jobs`() {
        DriverSession.open(dbPath).use { session ->
            assertEquals(emptyList(), session.jobs())
            assertTrue(coreVersion().isNotBlank())
        }
    }

    @Test
    fun `suspend calls import and apply, and the result survives reopening`() = runBlocking {
        val jobId = DriverSession.open(dbPath).use { session ->
            val summary = session.importDocument(sampleDocument)
            assertEquals(10u, summary.created)
            val first = session.jobs().first()
            val job = session.apply(first.id, Transition.Accept)
            assertEquals(JobState.ACCEPTED, job.state)
            assertEquals(1uL, job.version)
            first.id
        }
        DriverSession.open(dbPath).use { session ->
            assertEquals(JobState.ACCEPTED, session.job(jobId).state)
            val history = session.history(jobId)
            assertEquals(listOf(JobEventKind.IMPORTED, JobEventKind.TRANSITIONED), history.map { it.kind })
        }
    }

    @Test
    fun `an illegal transition is a typed exception with both states`() = runBlocking {
        DriverSession.open(dbPath).use { session ->
            session.importDocument(sampleDocument)
            val id = session.jobs().first().id
            val error = assertFailsWith<DoorstepException.InvalidTransition> {
                session.apply(id, Transition.Deliver)
            }
            assertEquals(JobState.ASSIGNED, error.from)
            assertEquals(JobState.DELIVERED, error.to)
            assertEquals(JobState.ASSIGNED, session.job(id).state)
        }
    }

    @Test
    fun `a bad document names the wrong field and imports nothing`() = runBlocking {
        DriverSession.open(dbPath).use { session ->
            val bad = sampleDocument.replaceFirst("\"lat\": 37.80012", "\"lat\": 91.0")
            assertNotEquals(sampleDocument, bad)
            val error = assertFailsWith<DoorstepException.InvalidInput> { session.importDocument(bad) }
            assertEquals("jobs[0].dropoff.location.lat", error.field)
            assertEquals(emptyList(), session.jobs())
        }
    }

    @Test
    fun `a damaged database file is named in the exception`() {
        val garbage = File(dir, "garbage.db").apply { writeBytes(ByteArray(8192) { 0x5a }) }
        val error = assertFailsWith<DoorstepException.CorruptDatabase> { DriverSession.open(garbage.path) }
        assertEquals(garbage.path, error.path)
    }

    @Test
    fun `job changes arrive in a Flow, in order, from a core thread`() = runBlocking {
        DriverSession.open(dbPath).use { session ->
            val seen = async { session.jobChanges().take(11).toList() }
            // runBlocking has one thread: yielding lets the collector start and
            // subscribe before the changes are made.
            repeat(5) { yield() }
            session.importDocument(sampleDocument)
            val id = session.jobs().first().id
            session.apply(id, Transition.Accept)
            val events = withTimeout(10_000) { seen.await() }
            assertEquals(10, events.count { it.kind == JobEventKind.IMPORTED })
            assertEquals(JobState.ACCEPTED, events.last().toState)
            assertEquals(events.map { it.sequence }.sorted(), events.map { it.sequence })
        }
    }

    @Test
    fun `observers are called on the core's thread, not the caller's`() = runBlocking {
        DriverSession.open(dbPath).use { session ->
            val threads = CopyOnWriteArrayList<Thread>()
            val done = CountDownLatch(10)
            session.subscribe(object : JobObserver {
                override fun onJobChanged(event: JobEvent) {
                    threads.add(Thread.currentThread())
                    done.countDown()
                }
            }).use {
                session.importDocument(sampleDocument)
                assertTrue(done.await(10, TimeUnit.SECONDS))
            }
            // JNA attaches the core's thread to the JVM for each call, so the
            // Java thread objects differ; none of them is the caller.
            assertEquals(10, threads.size)
            assertTrue(threads.none { it == Thread.currentThread() })
        }
    }

    @Test
    fun `an observer that throws is recorded and later changes still arrive`() = runBlocking {
        DriverSession.open(dbPath).use { session ->
            session.importDocument(sampleDocument)
            val ids = session.jobs().map { it.id }
            val delivered = CountDownLatch(2)
            val thrower = session.subscribe(object : JobObserver {
                override fun onJobChanged(event: JobEvent) {
                    delivered.countDown()
                    if (event.toState == JobState.ACCEPTED) throw IllegalStateException("screen already gone")
                }
            })
            session.apply(ids[0], Transition.Accept)
            session.apply(ids[1], Transition.Decline)
            assertTrue(delivered.await(10, TimeUnit.SECONDS))
            val deadline = System.currentTimeMillis() + 10_000
            while (session.observerHealth().delivered < 1uL && System.currentTimeMillis() < deadline) Thread.sleep(5)
            val health = session.observerHealth()
            assertEquals(1uL, health.failed)
            assertEquals(1uL, health.delivered)
            assertTrue(health.lastError!!.contains("screen already gone"), health.lastError)
            thrower.close()
        }
    }

    @Test
    fun `closed objects refuse further calls and the data stays`() = runBlocking {
        val session = DriverSession.open(dbPath)
        session.importDocument(sampleDocument)
        val subscription = session.subscribe(object : JobObserver {
            override fun onJobChanged(event: JobEvent) {}
        })
        subscription.cancel()
        subscription.close()
        session.close()
        assertFailsWith<IllegalStateException> { session.jobs() }
        // Many short-lived sessions in a row: nothing leaks or stays locked.
        repeat(50) {
            DriverSession.open(dbPath).use { assertEquals(10, it.jobs().size) }
        }
    }
}
