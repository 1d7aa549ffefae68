//! A downloaded range checked against its torrent's v1 piece hashes (BEP 3):
//! the files, in the torrent's order, are one stream of bytes cut into
//! pieces, and each piece's SHA-1 must be the one the torrent lists. That
//! covers what the checkpoint does not bind — `README.md`, and each entry's
//! precertificate and chain fingerprints — so a download proved against the
//! checkpoint is also, byte for byte, the torrent's. BEP 47 pad files of a
//! hybrid torrent are zeros that are never on disk.
//!
//! Pieces are hashed in parallel, each read with positioned reads from the
//! files it spans, so a file is opened once per piece it touches and no
//! piece waits for another.

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;
use sha1::{Digest, Sha1};

use super::error::{RangeVerifyError, file_error};
use super::range_folder::RangeFolder;
use crate::local_file::{self, FileError, Links};
use crate::torrent::metainfo::TorrentLayout;

/// Checks every file of `folder` against `layout`, the torrent at `url`:
/// first each file's length, then every piece. A failure names the first
/// file at fault (the first file of the first piece that does not match).
pub fn check(folder: &RangeFolder, layout: &TorrentLayout, url: &str) -> Result<(), RangeVerifyError> {
    let failure = layout.files.par_iter().filter(|file| !file.pad).find_map_first(|file| {
        let path = folder.path.join(&file.path);
        match local_file::open(&path, Links::Follow) {
            Ok((_, metadata)) if metadata.len() == file.length => None,
            Ok((_, metadata)) => Some(RangeVerifyError::FileLength {
                path,
                got: metadata.len(),
                expected: file.length,
                url: url.to_string(),
            }),
            Err(error) => Some(file_error(error)),
        }
    });
    if let Some(error) = failure {
        return Err(error);
    }
    check_pieces(folder, layout, url, 0..layout.pieces.len())
}

/// Checks the pieces that hold any byte of `file` (a path of the torrent),
/// as `helio mirror` does each time it reads a downloaded file again.
pub fn check_file(folder: &RangeFolder, layout: &TorrentLayout, url: &str, file: &str) -> Result<(), RangeVerifyError> {
    let mut start = 0u64;
    for entry in &layout.files {
        if entry.path == file {
            let path = folder.path.join(file);
            let (_, metadata) = local_file::open(&path, Links::Follow).map_err(file_error)?;
            if metadata.len() != entry.length {
                let (got, expected) = (metadata.len(), entry.length);
                return Err(RangeVerifyError::FileLength { path, got, expected, url: url.to_string() });
            }
            let first = start / layout.piece_length;
            let end = (start + entry.length).div_ceil(layout.piece_length).max(first + 1);
            let end = end.min(layout.pieces.len() as u64);
            return check_pieces(folder, layout, url, first as usize..end as usize);
        }
        start += entry.length;
    }
    Ok(())
}

/// Hashes `pieces` of the torrent from the files, in parallel.
fn check_pieces(
    folder: &RangeFolder,
    layout: &TorrentLayout,
    url: &str,
    pieces: std::ops::Range<usize>,
) -> Result<(), RangeVerifyError> {
    // Where each file starts in the stream of bytes.
    let mut starts = Vec::with_capacity(layout.files.len() + 1);
    let mut offset = 0u64;
    for file in &layout.files {
        starts.push(offset);
        offset += file.length;
    }
    starts.push(offset);
    let total = offset;
    let piece_length = layout.piece_length;
    let failure = pieces.into_par_iter().map_init(Vec::new, |buffer, piece| {
        let start = piece as u64 * piece_length;
        let end = (start + piece_length).min(total);
        // Every byte is overwritten below (read, or zeroed for a pad file):
        // the buffer is only resized, not cleared, so it is not zeroed for
        // each piece.
        buffer.resize((end - start) as usize, 0);
        // The first file that ends after the piece starts.
        let first = starts.partition_point(|&file_start| file_start <= start).saturating_sub(1);
        let mut spanned = Vec::new();
        for (index, file) in layout.files.iter().enumerate().skip(first) {
            let (file_start, file_end) = (starts[index], starts[index + 1]);
            if file_start >= end {
                break;
            }
            let from = start.max(file_start);
            let to = end.min(file_end);
            if from >= to {
                continue;
            }
            let slice = &mut buffer[(from - start) as usize..(to - start) as usize];
            if file.pad {
                slice.fill(0);
                continue;
            }
            let path = folder.path.join(&file.path);
            read_at(&path, slice, from - file_start)?;
            spanned.push(path);
        }
        if Sha1::digest(&buffer[..])[..] == layout.pieces[piece][..] {
            return Ok(());
        }
        let mut spanned = spanned.into_iter();
        let path = spanned.next().unwrap_or_else(|| folder.path.clone());
        let also: Vec<String> = spanned.map(|p| relative(folder, &p)).collect();
        Err(RangeVerifyError::Piece { path, piece, url: url.to_string(), also })
    });
    match failure.find_first(Result::is_err) {
        Some(Err(error)) => Err(error),
        _ => Ok(()),
    }
}

/// Reads `buffer.len()` bytes at `offset` of a regular file.
fn read_at(path: &Path, buffer: &mut [u8], offset: u64) -> Result<(), RangeVerifyError> {
    let (file, _) = local_file::open(path, Links::Follow).map_err(file_error)?;
    read_exact_at(&file, buffer, offset)
        .map_err(|source| RangeVerifyError::File(FileError::Io { path: path.to_path_buf(), source }))
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}

fn relative(folder: &RangeFolder, path: &Path) -> String {
    path.strip_prefix(&folder.path).unwrap_or(path).display().to_string()
}
