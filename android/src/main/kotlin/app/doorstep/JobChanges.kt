package app.doorstep

import app.doorstep.core.DriverSession
import app.doorstep.core.JobEvent
import app.doorstep.core.JobObserver
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * Every change to this session's jobs, in commit order, as a cold [Flow].
 *
 * Collecting subscribes an observer in the core; cancelling the collector
 * cancels the subscription, so a screen that stops collecting stops being
 * called. The buffer is unbounded because the core's delivery thread must
 * never block on a slow collector: it would delay every other observer.
 */
fun DriverSession.jobChanges(): Flow<JobEvent> = callbackFlow {
    val subscription = subscribe(object : JobObserver {
        override fun onJobChanged(event: JobEvent) {
            trySend(event)
        }
    })
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}.buffer(Channel.UNLIMITED)
