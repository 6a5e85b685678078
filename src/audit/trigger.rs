//! Why a reconcile fetched and wrote: from what the ExternalSecret's status says and what lockstep
//! saw. Pure.
use super::record::Trigger;

/// What the reconcile knows when it decides to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// No successful sync is recorded in the status.
    pub never_synced: bool,
    /// The generation, labels or annotations differ from the last sync.
    pub version_changed: bool,
    /// The generation differs from the status' `observedGeneration`.
    pub generation_changed: bool,
    /// The target Secret still holds what lockstep wrote.
    pub intact: bool,
    /// The periodic refresh is due.
    pub due: bool,
    /// The first reconcile of this object since lockstep started.
    pub first_look: bool,
}

pub fn of(f: Facts) -> Trigger {
    if f.never_synced || (f.version_changed && f.generation_changed) {
        Trigger::SpecChange
    } else if f.version_changed {
        Trigger::ForceSync
    } else if !f.intact {
        Trigger::Drift
    } else if f.first_look {
        Trigger::Startup
    } else if f.due {
        Trigger::Periodic
    } else {
        Trigger::StoreChange
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers() {
        let steady = Facts {
            intact: true,
            ..Default::default()
        };
        assert_eq!(
            of(Facts {
                never_synced: true,
                first_look: true,
                ..steady
            }),
            Trigger::SpecChange
        );
        assert_eq!(
            of(Facts {
                version_changed: true,
                generation_changed: true,
                ..steady
            }),
            Trigger::SpecChange
        );
        assert_eq!(
            of(Facts {
                version_changed: true,
                ..steady
            }),
            Trigger::ForceSync
        );
        assert_eq!(
            of(Facts {
                intact: false,
                due: true,
                ..steady
            }),
            Trigger::Drift
        );
        assert_eq!(
            of(Facts {
                first_look: true,
                due: true,
                ..steady
            }),
            Trigger::Startup
        );
        assert_eq!(
            of(Facts {
                due: true,
                ..steady
            }),
            Trigger::Periodic
        );
        assert_eq!(of(steady), Trigger::StoreChange);
    }
}
