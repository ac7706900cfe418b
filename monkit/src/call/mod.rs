//! The hot path: a function's record that every call writes (`func`), one call from begin to
//! end (`lifecycle`), the record of finished calls kept for looking back (`flight`), the shells `#[task]` and `Func::task` expand to (`task`), an async call's polls (`polls`), a call carried by its owner (`open`), and the `/ps` slots
//! of running calls (`live`).
//!
//! Uses: `util`, `stats`, `trace`.

pub mod flight;
pub(crate) mod func;
pub(crate) mod lifecycle;
pub(crate) mod live;
pub(crate) mod open;
pub mod polls;
pub(crate) mod task;
