//! Torrent formats: BitTorrent v1 (BEP 3), or hybrid v1 + v2 (BEP 52 with
//! BEP 47 pad files) that v1 and v2 clients both read, with an infohash for
//! each. See docs/hybrid.md for the hybrid piece length.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    V1,
    Hybrid,
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::Hybrid => "hybrid",
        }
    }
}
