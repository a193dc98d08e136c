package app.doorstep

import app.doorstep.core.ArrivalMode
import app.doorstep.core.CompletionCheck
import app.doorstep.core.DeliveryJob
import app.doorstep.core.DoorstepException
import app.doorstep.core.DriverSession
import app.doorstep.core.Fix
import app.doorstep.core.GeoPoint
import app.doorstep.core.JobAction
import app.doorstep.core.JobState
import app.doorstep.core.NavEvent
import app.doorstep.core.NavPhase
import app.doorstep.core.NavSnapshot
import app.doorstep.core.StopKind
import app.doorstep.core.Transition
import app.doorstep.core.defaultNavigationOptions
import java.io.File
import java.nio.file.Files
import java.time.Instant
import java.time.temporal.ChronoUnit
import kotlin.test.AfterTest
import kotlin.test.BeforeTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

/** The sample day the demo uses; the test runner says where it is. */
private val navSampleDocument: String by lazy {
    File(System.getenv("DOORSTEP_SAMPLE_DOCUMENT") ?: error("DOORSTEP_SAMPLE_DOCUMENT is not set")).readText()
}

/** Metres per degree of latitude, near enough for a test trace. */
private const val METRES_PER_DEGREE_LAT = 111_320.0

/**
 * A short drive to [target]: from 500 m due south, north at 9 m/s with one
 * fix a second until 50 m short of it, then 15 fixes stopped at it (speed 0,
 * accuracy 5-8 m, a few metres of scatter).
 */
private class ArrivalTrace(target: GeoPoint, start: Instant) {
    val origin = GeoPoint(target.latitude - 500.0 / METRES_PER_DEGREE_LAT, target.longitude)

    /** 51 fixes, 0 m to 450 m north of the origin. */
    val driving: List<Fix> = (0..50).map { k ->
        Fix(
            latitude = origin.latitude + k * 9.0 / METRES_PER_DEGREE_LAT,
            longitude = origin.longitude,
            horizontalAccuracyM = 6.0,
            speedMps = 9.0,
            courseDeg = 0.0,
            at = start.plusSeconds(k.toLong()),
        )
    }

    /** 15 fixes at the target, one a second after the driving ones. */
    val stopped: List<Fix> = (0 until 15).map { k ->
        val scatterM = listOf(-3.0, 2.0, 0.0, 4.0, -1.0)[k % 5]
        Fix(
            latitude = target.latitude + scatterM / METRES_PER_DEGREE_LAT,
            longitude = target.longitude - scatterM / METRES_PER_DEGREE_LAT,
            horizontalAccuracyM = 5.0 + (k % 4),
            speedMps = 0.0,
            courseDeg = null,
            at = start.plusSeconds((driving.size + k).toLong()),
        )
    }

    val all: List<Fix> get() = driving + stopped
}

class NavigationTest {
    private lateinit var dir: File
    private val dbPath get() = File(dir, "driver.db").path

    @BeforeTest
    fun makeDir() {
        dir = Files.createTempDirectory("doorstep-kotlin-nav").toFile()
    }

    @AfterTest
    fun removeDir() {
        dir.deleteRecursively()
    }

    /** Imports the sample day and accepts job HPM-2402; returns it. */
    private fun acceptSampleJob(session: DriverSession): DeliveryJob = runBlocking {
        session.importDocument(navSampleDocument)
        val id = session.jobs().single { it.reference == "HPM-2402" }.id
        val job = session.apply(id, Transition.Accept)
        assertEquals(JobState.ACCEPTED, job.state)
        job
    }

    private fun now(): Instant = Instant.now().truncatedTo(ChronoUnit.SECONDS)

    private fun arrivals(snapshots: List<NavSnapshot>) =
        snapshots.flatMap { it.events }.filterIsInstance<NavEvent.Arrived>()

    @Test
    fun `a short trace to the store arrives once and moves the job to at pickup`() {
        DriverSession.open(dbPath).use { session ->
            val job = acceptSampleJob(session)
            val store = job.pickup.store.location
            val trace = ArrivalTrace(store, now())

            val started = session.startNavigation(trace.origin, defaultNavigationOptions())
            assertEquals(listOf(job.id, job.id), started.stops.map { it.jobId })
            assertEquals(listOf(StopKind.PICKUP, StopKind.DROPOFF), started.stops.map { it.kind })
            assertEquals(store, started.stops[0].location)
            assertEquals(job.dropoff.location, started.stops[1].location)
            assertEquals(0u, started.state.currentStop)
            assertEquals(NavPhase.APPROACHING, started.state.phase)
            assertEquals(0uL, started.state.acceptedFixes)
            assertTrue(started.state.remainingLegM in 490.0..510.0, "first leg ${started.state.remainingLegM} m")
            assertTrue(started.state.remainingRouteM > started.state.remainingLegM)
            assertEquals(emptyList(), started.events)

            val driving = trace.driving.map { session.pushFix(it) }
            assertEquals(emptyList(), driving.flatMap { it.events }, "no event while driving")
            assertTrue(driving.all { it.state.phase == NavPhase.APPROACHING })
            val remaining = driving.map { it.state.remainingLegM }
            assertTrue(remaining.zipWithNext().all { (a, b) -> b < a }, "remaining distance shrinks: $remaining")
            assertTrue(remaining.last() in 40.0..60.0, "50 m to go, got ${remaining.last()}")
            assertNotNull(driving.last().state.etaNextStop)
            assertEquals(JobState.ACCEPTED, session.job(job.id).state)

            val stopped = trace.stopped.map { session.pushFix(it) }
            val all = driving + stopped

            // Three slow fixes inside the fence: the third one arrives.
            assertEquals(listOf(NavEvent.Arrived(0u, job.id, StopKind.PICKUP)), arrivals(all))
            val arrivedAt = all.indexOfFirst { it.events.isNotEmpty() }
            assertEquals(trace.driving.size + 2, arrivedAt)
            assertEquals(listOf(NavEvent.Arrived(0u, job.id, StopKind.PICKUP)), all[arrivedAt].events)

            // Automatic mode: the arrival moved the job, in that same call.
            val jobEvents = all.flatMap { it.jobEvents }
            assertEquals(1, jobEvents.size, "$jobEvents")
            assertEquals(job.id, jobEvents[0].jobId)
            assertEquals(JobState.ACCEPTED, jobEvents[0].fromState)
            assertEquals(JobState.AT_PICKUP, jobEvents[0].toState)
            assertEquals(jobEvents, all[arrivedAt].jobEvents)
            assertEquals(emptyList(), all.flatMap { it.suggestions })
            assertEquals(JobState.AT_PICKUP, session.job(job.id).state)
            assertEquals(JobState.AT_PICKUP, session.history(job.id).last().toState)

            val last = stopped.last().state
            assertEquals(NavPhase.ARRIVED, last.phase)
            assertEquals(0u, last.currentStop)
            assertEquals(trace.all.size.toULong(), last.acceptedFixes)
            assertEquals(0uL, last.ignoredStale)
            assertEquals(0uL, last.ignoredInaccurate)
            assertEquals(trace.stopped.last().at, last.lastFixAt)
            assertEquals(last, session.navigation()?.state)
        }
    }

    @Test
    fun `in suggest mode the arrival is offered and the job stays accepted`(): Unit = runBlocking {
        DriverSession.open(dbPath).use { session ->
            val job = acceptSampleJob(session)
            val trace = ArrivalTrace(job.pickup.store.location, now())
            val options = defaultNavigationOptions().copy(arrivalMode = ArrivalMode.SUGGEST)
            session.startNavigation(trace.origin, options)

            val all = trace.all.map { session.pushFix(it) }

            assertEquals(listOf(NavEvent.Arrived(0u, job.id, StopKind.PICKUP)), arrivals(all))
            val suggestions = all.flatMap { it.suggestions }
            assertEquals(listOf(JobAction(job.id, Transition.ArriveAtPickup)), suggestions)
            val arrivedAt = all.indexOfFirst { it.events.isNotEmpty() }
            assertEquals(suggestions, all[arrivedAt].suggestions)
            assertEquals(emptyList(), all.flatMap { it.jobEvents })
            assertEquals(JobState.ACCEPTED, session.job(job.id).state)
            assertEquals(trace.all.size.toULong(), all.last().state.acceptedFixes)

            // The driver confirms: the suggestion is an ordinary action.
            val confirmed = session.apply(suggestions[0].jobId, suggestions[0].transition)
            assertEquals(JobState.AT_PICKUP, confirmed.state)
        }
    }

    @Test
    fun `a fix with a NaN latitude is invalid input and changes nothing`() {
        DriverSession.open(dbPath).use { session ->
            val job = acceptSampleJob(session)
            val trace = ArrivalTrace(job.pickup.store.location, now())
            session.startNavigation(trace.origin, defaultNavigationOptions())
            trace.driving.take(5).forEach { session.pushFix(it) }
            val before = session.navigation()
            assertNotNull(before)
            assertEquals(5uL, before.state.acceptedFixes)

            val bad = trace.driving[5].copy(latitude = Double.NaN)
            val error = assertFailsWith<DoorstepException.InvalidInput> { session.pushFix(bad) }
            assertEquals("fix.latitude", error.field)

            assertEquals(before, session.navigation())
            // The same fix, well formed, is still new to the navigation.
            val next = session.pushFix(trace.driving[5])
            assertEquals(6uL, next.state.acceptedFixes)
            assertEquals(0uL, next.state.ignoredStale)
        }
    }

    @Test
    fun `navigation survives closing and reopening the session`() {
        val job: DeliveryJob
        val trace: ArrivalTrace
        val beforeClose: NavSnapshot
        DriverSession.open(dbPath).use { session ->
            job = acceptSampleJob(session)
            trace = ArrivalTrace(job.pickup.store.location, now())
            session.startNavigation(trace.origin, defaultNavigationOptions())
            beforeClose = trace.driving.take(20).map { session.pushFix(it) }.last()
            assertEquals(20uL, beforeClose.state.acceptedFixes)
        }

        DriverSession.open(dbPath).use { session ->
            val restored = session.navigation()
            assertNotNull(restored, "navigation is restored after a restart")
            assertEquals(beforeClose.state, restored.state)
            assertEquals(beforeClose.stops, restored.stops)
            assertEquals(20uL, restored.state.acceptedFixes)
            assertEquals(trace.driving[19].at, restored.state.lastFixAt)
            assertEquals(emptyList(), restored.events)

            // A fix not newer than the last one before the restart is stale.
            val stale = session.pushFix(trace.driving[19])
            assertEquals(1uL, stale.state.ignoredStale)
            assertEquals(20uL, stale.state.acceptedFixes)

            // The rest of the drive picks up where it left off and arrives.
            val rest = (trace.driving.drop(20) + trace.stopped).map { session.pushFix(it) }
            assertEquals(listOf(NavEvent.Arrived(0u, job.id, StopKind.PICKUP)), arrivals(rest))
            assertEquals(trace.all.size.toULong(), rest.last().state.acceptedFixes)
            assertEquals(JobState.AT_PICKUP, session.job(job.id).state)
        }

        DriverSession.open(dbPath).use { session ->
            val restored = session.navigation()
            assertNotNull(restored)
            assertEquals(trace.all.size.toULong(), restored.state.acceptedFixes)
            assertEquals(NavPhase.ARRIVED, restored.state.phase)
            session.stopNavigation()
            assertNull(session.navigation())
        }
        DriverSession.open(dbPath).use { session ->
            assertNull(session.navigation(), "a stopped navigation stays stopped")
        }
    }

    @Test
    fun `completion is allowed at the drop-off and needs an override a kilometre away`() {
        DriverSession.open(dbPath).use { session ->
            val job = acceptSampleJob(session)
            val dropoff = job.dropoff.location
            fun fixAt(northM: Double) = Fix(
                latitude = dropoff.latitude + northM / METRES_PER_DEGREE_LAT,
                longitude = dropoff.longitude,
                horizontalAccuracyM = 5.0,
                speedMps = 0.0,
                courseDeg = null,
                at = now(),
            )

            assertEquals(CompletionCheck.WithinGeofence, session.completionCheck(job.id, fixAt(0.0)))
            assertEquals(CompletionCheck.WithinGeofence, session.completionCheck(job.id, fixAt(30.0)))

            val warn = assertIs<CompletionCheck.Warn>(session.completionCheck(job.id, fixAt(200.0)))
            assertTrue(warn.distanceM in 100.0..300.0, "$warn")

            val far = assertIs<CompletionCheck.NeedsOverride>(session.completionCheck(job.id, fixAt(1_000.0)))
            // 1 km less the 40 m fence and the 5 m accuracy credit.
            assertTrue(far.distanceM in 900.0..1_000.0, "$far")

            assertFailsWith<DoorstepException.InvalidInput> {
                session.completionCheck(job.id, fixAt(0.0).copy(latitude = Double.NaN))
            }
        }
    }

    @Test
    fun `navigation needs an accepted job`() {
        DriverSession.open(dbPath).use { session ->
            runBlocking { session.importDocument(navSampleDocument) }
            val error = assertFailsWith<DoorstepException.InvalidInput> {
                session.startNavigation(GeoPoint(37.8, -122.26), defaultNavigationOptions())
            }
            assertEquals("jobs", error.field)
            assertNull(session.navigation())
            val fix = Fix(37.8, -122.26, 5.0, 0.0, null, now())
            assertFailsWith<DoorstepException.InvalidInput> { session.pushFix(fix) }
        }
    }
}
