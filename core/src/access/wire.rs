//! Grants as dispatch sends them (`GET /v1/grants`, docs/dispatch-api.yaml):
//! strict reading, so nothing malformed reaches the grant cache.

use super::grant::{Grant, RevocationNotice};
use crate::error::{CoreError, Result};
use crate::keys::{DevicePublicKey, from_hex};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

const MAX_GRANTS: usize = 1000;

/// Dispatch's current grants for this device and its revocation state.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantSet {
    pub grants: Vec<(Uuid, Grant)>,
    pub epoch: u16,
    pub notice: Option<RevocationNotice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireGrants {
    grants: Vec<WireGrant>,
    revocation: WireRevocation,
}

#[derive(Deserialize)]
struct WireGrant {
    grant_id: String,
    job_id: Uuid,
    door_ids: Vec<u32>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    encoded: String,
}

#[derive(Deserialize)]
struct WireRevocation {
    epoch: u16,
    #[serde(default)]
    notice: Option<String>,
}

/// Reads a grants answer; every grant must be this device's and its
/// summary fields must agree with its signed bytes.
pub fn parse_grants(json: &[u8], device: &DevicePublicKey) -> Result<GrantSet> {
    let wire: WireGrants = serde_json::from_slice(json).map_err(|e| CoreError::invalid("grants", e.to_string()))?;
    if wire.grants.len() > MAX_GRANTS {
        return Err(CoreError::invalid("grants", format!("more than {MAX_GRANTS} grants")));
    }
    let mut grants = Vec::with_capacity(wire.grants.len());
    for (index, item) in wire.grants.into_iter().enumerate() {
        let field = |name: &str| format!("grants[{index}].{name}");
        let bytes = from_hex(&item.encoded).ok_or_else(|| CoreError::invalid(field("encoded"), "not hex"))?;
        let grant = Grant::parse(&bytes).map_err(|e| CoreError::invalid(field("encoded"), e.to_string()))?;
        if grant.grant_id_hex() != item.grant_id.to_ascii_lowercase() {
            return Err(CoreError::invalid(field("grant_id"), "differs from the encoded grant"));
        }
        if grant.door_ids != item.door_ids {
            return Err(CoreError::invalid(field("door_ids"), "differ from the encoded grant"));
        }
        if item.not_before.timestamp() != i64::from(grant.not_before) || item.not_after.timestamp() != i64::from(grant.not_after()) {
            return Err(CoreError::invalid(field("not_before"), "the window differs from the encoded grant"));
        }
        if grant.job_tag != super::grant::job_tag(item.job_id) {
            return Err(CoreError::invalid(field("job_id"), "differs from the encoded grant"));
        }
        if !grant.is_for_device(device) {
            return Err(CoreError::invalid(field("encoded"), "issued to another device key"));
        }
        grants.push((item.job_id, grant));
    }
    let notice = wire
        .revocation
        .notice
        .map(|hex| {
            let bytes = from_hex(&hex).ok_or_else(|| CoreError::invalid("revocation.notice", "not hex"))?;
            RevocationNotice::parse(&bytes).map_err(|e| CoreError::invalid("revocation.notice", e.to_string()))
        })
        .transpose()?;
    if notice.as_ref().is_some_and(|n| n.epoch != wire.revocation.epoch) {
        return Err(CoreError::invalid("revocation.notice", "its epoch differs from revocation.epoch"));
    }
    Ok(GrantSet { grants, epoch: wire.revocation.epoch, notice })
}
