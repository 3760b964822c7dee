//! placeholder
pub mod config;
pub mod day;
pub mod ledger;
pub mod manager;
pub mod notify;
pub mod state;
pub mod usage;

pub use config::{
    BackendPolicy, ConfigDiagnostic, ConfigError, ProcessConfig, QuotaConfig, UnknownProcess,
};
pub use day::QuotaDay;
pub use ledger::{
    Durability, DurableLedger, DurableOptions, Ledger, LedgerError, MemoryLedger, RedisLedger,
    RedisOptions,
};
pub use manager::{
    Denial, ProcessHandle, ProcessStatus, Quotas, QuotasError, Reservation, Settlement,
};
pub use notify::{
    ChannelNotifier, CollectingNotifier, NotificationKind, Notifier, NullNotifier,
    QuotaNotification,
};
pub use state::QuotaState;
pub use usage::{Dimension, Limits, Usage, MAX_AMOUNT};
