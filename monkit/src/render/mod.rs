//! Renderers of a registry's stats, used as they are by the HTTP pages.

pub mod json;
pub mod text;
