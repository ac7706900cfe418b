//! Renderers of a registry's stats, used as they are by the HTTP pages.

pub mod dot;
pub mod fields;
pub mod format;
pub mod funcs;
pub mod json;
pub mod prometheus;
mod prometheus_pb;
pub mod ps;
pub mod text;
pub mod trace;
