//! The numbers: lock-free counts, running counts, histograms and distributions that a call or
//! a source writes; what every source reads as ([`Reading`]); series keys
//! and tags; how a call ended.
//!
//! Uses: `util`.

pub(crate) mod counter;
pub(crate) mod dist;
mod error_view;
pub(crate) mod exemplar;
pub(crate) mod gauge;
pub(crate) mod hist;
mod hist_cells;
pub(crate) mod meter;
pub(crate) mod outcome;
pub(crate) mod raw;
pub(crate) mod reading;
pub(crate) mod running;
pub(crate) mod series;
pub(crate) mod source;
pub(crate) mod val;

pub use crate::util::clock::Tick;
pub use crate::util::shard::{set_shards, shards, MAX_SHARDS};
pub use counter::Counter;
pub use dist::{recent_window, recent_window_span, set_recent_window, Histogram, Snapshot};
pub use error_view::{add_error_view, error_view, kind_of_any};
pub use exemplar::{in_bucket, Exemplar, MAX_EXEMPLARS};
pub use gauge::FloatGauge;
pub use meter::Meter;
pub use outcome::{
    add_error_kind_handler, error_kind_of, grpc_code_kind, type_kind, ErrorKind, KindHandler,
    Outcome,
};
pub use raw::{Aggregate, RawVal};
pub use reading::Reading;
pub use running::set_exact_highwater;
pub use series::{FuncName, SeriesKey, Tags};
pub use source::{Chain, DeltaTransform, DiffMeter, StatSource};
pub use val::{BoolVal, DurationVal, FloatVal, HistogramVal, IntVal, Timer, TimerGuard};
