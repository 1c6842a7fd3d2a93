//! A guest launched on a simulated platform: what `/dev/sev-guest` or configfs-tsm would give
//! a real guest, i.e. extended reports and derived (sealing) keys.

use crate::platform::SimulatedPlatform;
use crate::ReportFields;
use snpkms_verifier::{GuestPolicy, TcbVersion};
use std::sync::Arc;

/// What the VMM and firmware fix at launch.
#[derive(Debug, Clone, PartialEq, Eq)]
///
/// The default is a zero measurement and host_data, policy SMT + the must-be-one bit, no ID
/// block.
pub struct GuestLaunch {
    /// Launch measurement of the guest image (what `snpkms measure` computes).
    pub measurement: [u8; 48],
    /// HOST_DATA; for an app guest `SHA-256("snpkms/app/v1" || app_id || compose_hash)`.
    pub host_data: [u8; 32],
    /// Guest policy bits.
    pub policy: u64,
    /// FAMILY_ID of the ID block.
    pub family_id: [u8; 16],
    /// IMAGE_ID of the ID block.
    pub image_id: [u8; 16],
    /// GUEST_SVN of the ID block.
    pub guest_svn: u32,
}

impl Default for GuestLaunch {
    fn default() -> Self {
        GuestLaunch {
            measurement: [0; 48],
            host_data: [0; 32],
            policy: GuestPolicy::SMT | GuestPolicy::RESERVED_MBO,
            family_id: [0; 16],
            image_id: [0; 16],
            guest_svn: 0,
        }
    }
}

/// A report plus the certificate table the host supplies with it, as an extended report gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The signed report (0x4A0 bytes).
    pub report: Vec<u8>,
    /// The GUID-keyed certificate table (VCEK, ASK, ARK) in the extended-report format.
    pub cert_table: Vec<u8>,
}

/// Which launch facts a derived key is bound to (MSG_KEY_REQ GUEST_FIELD_SELECT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DerivedKeyRequest {
    /// Mix in the guest policy (GUEST_FIELD_SELECT bit 0).
    pub mix_policy: bool,
    /// Mix in IMAGE_ID (bit 1).
    pub mix_image_id: bool,
    /// Mix in FAMILY_ID (bit 2).
    pub mix_family_id: bool,
    /// Mix in the launch measurement (bit 3).
    pub mix_measurement: bool,
    /// Mix in GUEST_SVN (bit 4).
    pub mix_guest_svn: bool,
    /// VMPL mixed into the key. The simulator does not check it against the caller's VMPL as
    /// the firmware does.
    pub vmpl: u32,
    /// TCB_VERSION to mix in (GUEST_FIELD_SELECT bit 5); the firmware refuses one above the
    /// committed TCB, so firmware rolled back below it cannot derive the key.
    pub tcb_version: Option<TcbVersion>,
}

impl DerivedKeyRequest {
    /// What a KMS node uses to seal its root secret: bound to its code, its policy and a TCB
    /// version, so another image on the same chip, or older firmware, cannot unseal it.
    pub fn sealing(tcb_version: TcbVersion) -> DerivedKeyRequest {
        DerivedKeyRequest {
            mix_policy: true,
            mix_measurement: true,
            tcb_version: Some(tcb_version),
            ..DerivedKeyRequest::default()
        }
    }
}

/// Why the simulated firmware refused MSG_KEY_REQ.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerivedKeyError {
    /// Some component of the requested TCB_VERSION is above the platform's committed TCB (as
    /// after a firmware rollback below the TCB a key was sealed at).
    #[error("TCB_VERSION {requested} is above the committed TCB {committed}")]
    TcbAboveCommitted {
        /// The TCB_VERSION asked for.
        requested: TcbVersion,
        /// The platform's committed TCB.
        committed: TcbVersion,
    },
}

/// A running simulated guest.
#[derive(Clone)]
pub struct SimulatedGuest {
    platform: Arc<SimulatedPlatform>,
    launch: GuestLaunch,
}

impl SimulatedGuest {
    /// A guest launched with `launch` on `platform`.
    pub fn new(platform: Arc<SimulatedPlatform>, launch: GuestLaunch) -> SimulatedGuest {
        SimulatedGuest { platform, launch }
    }

    /// The platform (chip) this guest runs on.
    pub fn platform(&self) -> &SimulatedPlatform {
        &self.platform
    }

    /// What was fixed at this guest's launch.
    pub fn launch(&self) -> &GuestLaunch {
        &self.launch
    }

    /// The report fields this guest's firmware would write for `report_data` at `vmpl`.
    pub fn fields(&self, report_data: [u8; 64], vmpl: u32) -> ReportFields {
        let mut fields = self.platform.default_fields();
        fields.report_data = report_data;
        fields.vmpl = vmpl;
        fields.measurement = self.launch.measurement;
        fields.host_data = self.launch.host_data;
        fields.policy = self.launch.policy;
        fields.family_id = self.launch.family_id;
        fields.image_id = self.launch.image_id;
        fields.guest_svn = self.launch.guest_svn;
        fields
    }

    /// SNP_GET_EXT_REPORT: a signed report and the host's certificate table.
    pub fn extended_report(&self, report_data: [u8; 64], vmpl: u32) -> Evidence {
        let fields = self.fields(report_data, vmpl);
        Evidence {
            report: self.platform.sign(&fields),
            cert_table: self.platform.host_cert_table(fields.reported_tcb),
        }
    }

    /// SNP_GET_DERIVED_KEY: a key only this chip can derive, bound to the selected launch facts.
    pub fn derived_key(&self, req: DerivedKeyRequest) -> Result<[u8; 32], DerivedKeyError> {
        let mut context = Vec::with_capacity(160);
        context.extend_from_slice(&req.vmpl.to_le_bytes());
        let l = &self.launch;
        if req.mix_policy {
            context.extend_from_slice(b"policy");
            context.extend_from_slice(&l.policy.to_le_bytes());
        }
        if req.mix_image_id {
            context.extend_from_slice(b"image_id");
            context.extend_from_slice(&l.image_id);
        }
        if req.mix_family_id {
            context.extend_from_slice(b"family_id");
            context.extend_from_slice(&l.family_id);
        }
        if req.mix_measurement {
            context.extend_from_slice(b"measurement");
            context.extend_from_slice(&l.measurement);
        }
        if req.mix_guest_svn {
            context.extend_from_slice(b"guest_svn");
            context.extend_from_slice(&l.guest_svn.to_le_bytes());
        }
        if let Some(tcb) = req.tcb_version {
            let committed = self.platform.tcb();
            // Any component above the committed one is refused, as the firmware does.
            if committed.first_below(&tcb).is_some() {
                return Err(DerivedKeyError::TcbAboveCommitted {
                    requested: tcb,
                    committed,
                });
            }
            context.extend_from_slice(b"tcb_version");
            context.extend_from_slice(&tcb.encode(self.platform.product()));
        }
        Ok(self.platform.chip_key(&context))
    }
}
