//! The numbers: lock-free counts, running counts, histograms and distributions that a call or
//! a source writes; what every source reads as ([`Reading`](reading::Reading)); series keys
//! and tags; how a call ended.
//!
//! Uses: `util`.

pub(crate) mod counter;
pub(crate) mod dist;
pub(crate) mod hist;
pub(crate) mod meter;
pub(crate) mod outcome;
pub(crate) mod raw;
pub(crate) mod reading;
pub(crate) mod running;
pub(crate) mod series;
pub(crate) mod source;
pub(crate) mod val;
