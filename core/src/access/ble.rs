//! The btleplug door link (feature `ble`): a real BLE central for desktop
//! and QA machines (BlueZ over D-Bus on Linux, CoreBluetooth on macOS,
//! WinRT on Windows). Phones bring their own link through the shell.
//!
//! Scans for the door service, picks the lock whose service data names the
//! door, connects, subscribes to the door characteristic, then writes and
//! reads ATT payloads. Every btleplug failure becomes a [`LinkError`] the
//! driver can act on: no D-Bus or no adapter is `Unavailable`.

use super::link::{BleLink, LinkError};
use btleplug::api::{Central, CharPropFlags, Characteristic, Manager as _, Peripheral as _, ScanFilter, ValueNotification, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::stream::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The door service (docs/door-protocol.md).
pub const DOOR_SERVICE: Uuid = Uuid::from_u128(0x6f1d0001_8c3e_4b5a_9d7e_2f0a1b3c4d5e);
/// Written by the phone, notified by the lock.
pub const DOOR_CHARACTERISTIC: Uuid = Uuid::from_u128(0x6f1d0002_8c3e_4b5a_9d7e_2f0a1b3c4d5e);

type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

struct Connection {
    peripheral: Peripheral,
    characteristic: Characteristic,
    notifications: Notifications,
}

pub struct BtleplugLink {
    adapter: Adapter,
    connection: Mutex<Option<Connection>>,
}

impl BtleplugLink {
    /// Finds the first Bluetooth adapter; `Unavailable` when there is no
    /// system Bluetooth service (no D-Bus, no BlueZ) or no adapter.
    pub fn open() -> Result<BtleplugLink, LinkError> {
        block_on(async {
            let manager = Manager::new().await.map_err(unavailable)?;
            let adapter = manager
                .adapters()
                .await
                .map_err(unavailable)?
                .into_iter()
                .next()
                .ok_or_else(|| LinkError::Unavailable { reason: "no Bluetooth adapter".into() })?;
            Ok(BtleplugLink { adapter, connection: Mutex::new(None) })
        })?
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Option<Connection>> {
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn find(&self, door_id: u32, timeout: Duration) -> Result<Peripheral, LinkError> {
        self.adapter.start_scan(ScanFilter { services: vec![DOOR_SERVICE] }).await.map_err(unavailable)?;
        let deadline = Instant::now() + timeout;
        let found = 'scan: loop {
            for peripheral in self.adapter.peripherals().await.map_err(broken)? {
                let advertised = peripheral.properties().await.ok().flatten().and_then(|p| p.service_data.get(&DOOR_SERVICE).cloned());
                if advertised.as_deref().and_then(advertised_door) == Some(door_id) {
                    break 'scan Some(peripheral);
                }
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let _ = self.adapter.stop_scan().await;
        found.ok_or(LinkError::OutOfRange)
    }
}

/// [`BtleplugLink::open`] with the driver-facing error: no Bluetooth is
/// `BluetoothUnavailable`.
pub fn open_link() -> crate::Result<BtleplugLink> {
    BtleplugLink::open().map_err(|e| super::protocol::link_error(e, 0))
}

/// Service data: lock id then door id, 4 bytes each, big-endian.
fn advertised_door(service_data: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = service_data.get(4..8)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

impl BleLink for BtleplugLink {
    fn connect(&self, door_id: u32, timeout: Duration) -> Result<u16, LinkError> {
        self.disconnect();
        let connection = block_on(async {
            let peripheral = self.find(door_id, timeout).await?;
            tokio::time::timeout(timeout, peripheral.connect()).await.map_err(|_| LinkError::OutOfRange)?.map_err(broken)?;
            peripheral.discover_services().await.map_err(broken)?;
            let characteristic = peripheral
                .characteristics()
                .into_iter()
                .find(|c| c.uuid == DOOR_CHARACTERISTIC && c.properties.contains(CharPropFlags::NOTIFY))
                .ok_or_else(|| LinkError::Broken { reason: "the lock has no door characteristic".into() })?;
            let notifications = peripheral.notifications().await.map_err(broken)?;
            peripheral.subscribe(&characteristic).await.map_err(broken)?;
            Ok::<_, LinkError>(Connection { peripheral, characteristic, notifications })
        })??;
        let mtu = connection.peripheral.mtu().clamp(23, 517);
        *self.connection() = Some(connection);
        Ok(mtu)
    }

    fn write(&self, payload: &[u8]) -> Result<(), LinkError> {
        let guard = self.connection();
        let connection = guard.as_ref().ok_or_else(|| LinkError::Broken { reason: "not connected".into() })?;
        block_on(connection.peripheral.write(&connection.characteristic, payload, WriteType::WithResponse))?.map_err(broken)
    }

    fn receive(&self, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let mut guard = self.connection();
        let connection = guard.as_mut().ok_or_else(|| LinkError::Broken { reason: "not connected".into() })?;
        block_on(async {
            loop {
                match tokio::time::timeout(timeout, connection.notifications.next()).await {
                    Err(_) => return Err(LinkError::Timeout),
                    Ok(None) => return Err(LinkError::Broken { reason: "the lock disconnected".into() }),
                    Ok(Some(note)) if note.uuid == DOOR_CHARACTERISTIC => return Ok(note.value),
                    Ok(Some(_)) => continue,
                }
            }
        })?
    }

    fn disconnect(&self) {
        if let Some(connection) = self.connection().take() {
            let _ = block_on(connection.peripheral.disconnect());
        }
    }
}

/// Runs btleplug's async calls on the core's runtime from the blocking
/// thread the exchange runs on.
fn block_on<F: std::future::Future + Send>(future: F) -> Result<F::Output, LinkError>
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(LinkError::Broken { reason: "the BLE link must be driven from a blocking thread".into() });
    }
    Ok(crate::runtime::shared().block_on(future))
}

fn unavailable(err: btleplug::Error) -> LinkError {
    LinkError::Unavailable { reason: err.to_string() }
}

fn broken(err: btleplug::Error) -> LinkError {
    match err {
        btleplug::Error::DeviceNotFound => LinkError::OutOfRange,
        btleplug::Error::TimedOut(_) => LinkError::Timeout,
        btleplug::Error::PermissionDenied => LinkError::Unavailable { reason: "Bluetooth permission denied".into() },
        other => LinkError::Broken { reason: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a system D-Bus (containers, CI) or without an
    /// adapter, opening the link is a typed "Bluetooth unavailable", never a
    /// panic or a generic failure.
    #[test]
    fn without_a_system_bus_or_adapter_bluetooth_is_unavailable() {
        let bus = std::path::Path::new("/run/dbus/system_bus_socket").exists()
            || std::path::Path::new("/var/run/dbus/system_bus_socket").exists()
            || std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some();
        match open_link() {
            Err(crate::CoreError::BluetoothUnavailable { reason }) => assert!(!reason.is_empty()),
            Ok(_) => assert!(bus, "a Bluetooth link opened with no system bus"),
            Err(other) => panic!("expected BluetoothUnavailable, got {other:?}"),
        }
        if !bus {
            assert!(matches!(open_link(), Err(crate::CoreError::BluetoothUnavailable { .. })));
        }
    }

    #[test]
    fn advertised_service_data_names_the_door() {
        assert_eq!(advertised_door(&[0, 0, 0, 1, 0, 0, 0, 42]), Some(42));
        assert_eq!(advertised_door(&[0, 0, 0, 1]), None);
    }
}
