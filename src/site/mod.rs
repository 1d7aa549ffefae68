//! The output directory: atomic writes, the build lock, the published state,
//! and the files people and feed readers use.

pub mod atomic;
pub mod json;
pub mod links;
pub mod lock;
pub mod state;
