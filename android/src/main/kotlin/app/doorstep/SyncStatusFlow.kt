package app.doorstep

import app.doorstep.core.DriverSession
import app.doorstep.core.SyncObserver
import app.doorstep.core.SyncStatus
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.launch

/**
 * The sync status (pending actions, last successful sync, errors) as a cold
 * [Flow]: the current status first, then every change.
 *
 * Conflated because a status bar only needs the latest value, and the
 * core's delivery thread must never wait for a slow collector.
 *
 * Not named `syncStatus()`: the session already has a member of that name
 * (the status right now), and a member always wins over an extension with
 * the same signature, so an extension of that name could never be called.
 */
fun DriverSession.syncStatusUpdates(): Flow<SyncStatus> = callbackFlow {
    val subscription = subscribeSync(object : SyncObserver {
        override fun onSyncStatus(status: SyncStatus) {
            trySend(status)
        }
    })
    awaitClose {
        subscription.cancel()
        subscription.close()
    }
}.buffer(Channel.CONFLATED).distinctUntilChanged()

/**
 * Tells the core about connectivity for as long as [scope] lives: Android's
 * `ConnectivityManager` callback (or a test) feeds [online]; going online
 * makes the core send queued actions at once.
 */
fun DriverSession.followConnectivity(scope: CoroutineScope, online: Flow<Boolean>): Job =
    scope.launch {
        online.distinctUntilChanged().collect { setOnline(it) }
    }
